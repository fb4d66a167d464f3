"""`msat sweep` (docs/cli.md): every predict option a comma-separated list, one labelled Zarr store,
run on dask.distributed (runtime.sweep). Exit 0 when every task ran (non-converged points are data),
2 for bad input before any work, 3 when tasks failed (listed in the store and on stderr)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InputError
from .cli import BUILTIN_SIZES, check_source
from .outputs import say, stderr_is_terminal


def add_parsers(sub) -> None:
    sw = sub.add_parser("sweep", help="a grid of predict calls (lists of every option) into one Zarr store")
    src = sw.add_mutually_exclusive_group()
    src.add_argument("--data", type=Path, help=".npz (X, y, optional X_test) or .csv file")
    src.add_argument("--dataset", help="built-in data sets: ising, teacher or both (a list; each swept over --seed, "
                                       "--P, --D, --P-test)")
    sw.add_argument("--target", default=None, help="target column of a CSV file (default y)")
    for opt, key, what in (("--P", "P", "train points"), ("--D", "D", "input dimension"),
                           ("--P-test", "P_test", "test points")):
        sw.add_argument(opt, default=None, help=f"built-in set: {what} (a list; default {BUILTIN_SIZES[key]})")
    sw.add_argument("--seed", default="0", help="built-in set: seeds (0..9 a range) (a list)")
    sw.add_argument("--N", default=None, help="hidden widths (a list)")
    sw.add_argument("--depth", default=None, help="hidden layers of width N each (a list: a dimension of the store)")
    sw.add_argument("--widths", default=None, help="per-layer widths, a list of 'N1xN2x...'")
    sw.add_argument("--chi", default=None, help="chi values: numbers, sqrtN and N (relative to the last width)")
    sw.add_argument("--kappa", default=None, help="output noise (a list)")
    sw.add_argument("--g-v", dest="g_v", default="1", help="readout prior scale (a list)")
    sw.add_argument("--g-w", dest="g_w", default="1", help="hidden prior scale (a list; per layer 'g1xg2')")
    sw.add_argument("--activation", default="linear", help="linear, erf, relu (a list)")
    sw.add_argument("--method", default=None, help="method[:order] (a list: exact,loop:2,adaptive:1; default loop:1 "
                    "for linear networks, adaptive otherwise)")
    sw.add_argument("--order", default=None, help="loop/adaptive order for methods given without one (a list: "
                    "--method loop --order 1,2 is loop:1,loop:2)")
    sw.add_argument("--dressed", nargs="?", const="true", default="false",
                    help="loop around the full saddle (true,false)")
    sw.add_argument("--estimator", default="auto", help="non-linear adaptive: cumulant, mc or auto (a list)")
    sw.add_argument("--mc-samples", dest="mc_samples", default=None, help="non-linear adaptive: draws (a list)")
    sw.add_argument("--samples", default=None, help="sample: draws per chain (a list; default 1000)")
    sw.add_argument("--chains", default=None, help="sample: chains (a list; default 4)")
    sw.add_argument("--readout", default="sampled", help="sample: sampled or marginal (a list)")
    sw.add_argument("--out", type=Path, default=None, help="the Zarr store to write (STORE.zarr); with --plot "
                    "the figure (default: beside the store)")
    run = sw.add_mutually_exclusive_group()
    run.add_argument("--workers", type=int, default=None, help="local worker processes (default: the cores)")
    run.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:port)")
    sw.add_argument("--resume", action="store_true", help="continue a store: run only the tasks not done")
    fig = sw.add_argument_group("figures of a finished store (docs/cli.md, msat sweep --plot)")
    fig.add_argument("--plot", type=Path, default=None, metavar="STORE",
                     help="draw a figure of STORE instead of sweeping")
    fig.add_argument("--x", default=None, help="option along the x axis (default N, or widths where the store has it)")
    fig.add_argument("--y", default="test_error",
                     help="quantity (test_error or a variable), or an option for a heat map")
    fig.add_argument("--hue", default="method", help="one line (or heat-map panel) per value of this option")
    fig.add_argument("--color", default="test_error", help="heat map: the quantity coloured")
    fig.add_argument("--sel", action="append", default=[], metavar="OPTION=VALUE", help="fix an option (repeatable)")
    fig.add_argument("--reference", default=None, help="test_error against this method, or 'targets'")
    sw.set_defaults(handler=_cmd_sweep, sweep_defaults={d: sw.get_default(d) for d in SWEEP_ONLY})


#: the options of a sweep run, which a figure of a finished store (--plot) does not read
SWEEP_ONLY = ("data", "dataset", "target", "P", "D", "P_test", "seed", "N", "depth", "widths", "chi", "kappa", "g_v",
              "g_w", "activation", "method", "order", "dressed", "estimator", "mc_samples", "samples", "chains",
              "readout",
              "workers", "scheduler", "resume")


def _figure_path(path: Path) -> Path:
    """--out of a figure: a file in a format matplotlib writes (.png where no suffix is given)."""
    if path.is_dir():
        raise InputError(f"--out {path} is a folder: name a figure file (.png, .pdf, .svg)")
    if not path.suffix:
        return path.with_suffix(".png")  # matplotlib's default: said so in the 'wrote' line
    from matplotlib.backend_bases import FigureCanvasBase

    if path.suffix[1:].lower() not in FigureCanvasBase.get_supported_filetypes():
        raise InputError(f"--out {path.name}: matplotlib writes no {path.suffix} figures (use .png, .pdf or .svg)")
    return path


def _cmd_plot(args) -> int:
    given = [d for d in SWEEP_ONLY if getattr(args, d) != args.sweep_defaults[d]]
    # `--plot S --chi 1` may mean a selection: say how to make one rather than drop it silently, also
    # when the figure fails (where the error stays the one line, with this said at its end)
    ignored = ", ".join("--" + d.replace("_", "-") for d in given) + " ignored with --plot (it draws the store " \
        "as it is; fix an option with --sel OPTION=VALUE)" if given else ""
    try:
        path, what = _plot(args)
    except InputError as err:
        raise InputError(f"{err}; {ignored}" if ignored else str(err)) from None
    say(f"msat sweep: wrote {path} ({what})")
    if ignored:
        say(f"msat: warning: {ignored}")
    return 0


def _plot(args):
    from . import sweep_figures as sf

    path = None if args.out is None else _figure_path(Path(args.out))
    st = sf.select(sf.open_store(args.plot), args.sel)
    heat = args.y in st.dims
    x = args.x or ("widths" if "widths" in st.dims else "N")
    path = path or sf.default_path(args.plot, x, args.y, args.hue, args.color, heat)
    fig, what = sf.plot(st, x=x, y=args.y, hue=args.hue, color=args.color, reference=args.reference)
    try:
        fig.savefig(path, dpi=130)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        sf.plt.close(fig)
    return path, what


def _cmd_sweep(args) -> int:
    from .. import grid, sweep, sweep_store

    if args.plot is not None:
        return _cmd_plot(args)
    given = (("--data or --dataset", args.data or args.dataset), ("--chi", args.chi), ("--kappa", args.kappa),
             ("--out", args.out))
    missing = [f for f, v in given if v is None]
    if missing:
        raise InputError(f"msat sweep needs {', '.join(missing)} (or --plot STORE for a figure)")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    check_source(args)
    if args.data is not None:
        from .. import data

        target = "y" if args.target is None else args.target
        source = data.load(args.data, target=target)
        sizes = dict(P=str(source.P), D=str(source.D), P_test=str(source.P_test))
        spec_source = str(args.data.resolve())
        # --resume compares the data too: a store must not mix two target columns or two versions of a file
        identity = sweep_store.data_identity(args.data, target)
    else:
        source = None  # the built-in sets are the grid's dataset coordinate
        sizes = {k: getattr(args, k) or str(v) for k, v in BUILTIN_SIZES.items()}
        spec_source, identity = "builtin", None
    g = grid.build(N=args.N, widths=args.widths, depth=args.depth, chi=args.chi, kappa=args.kappa, g_v=args.g_v,
                   g_w=args.g_w, activation=args.activation, method=args.method, order=args.order, dressed=args.dressed,
                   seed=args.seed, source=spec_source, estimator=args.estimator, mc_samples=args.mc_samples,
                   samples=args.samples, chains=args.chains, readout=args.readout, data=identity, dataset=args.dataset,
                   **sizes)
    if source is None:
        source = ("builtin", g.coords["dataset"][0])
    if args.resume and not Path(args.out).exists():  # a mistyped store name would otherwise start over in silence
        say(f"msat: warning: --resume: no store at {args.out}: starting a new one")
    failures = sweep.sweep(g, source, args.out, workers=args.workers, scheduler=args.scheduler,
                           resume=args.resume, progress=stderr_is_terminal(), log=sys.stderr,
                           command=getattr(args, "command_line", None))
    for f in failures:
        say(f"msat: task failed: {f['task']}: {f['error']}")
    _say_chi_outside(g)  # after the run: bad input must stay one line
    _say_notes(args.out)
    return 3 if failures else 0


def _say_chi_outside(g) -> None:
    """predict's warning for chi outside [1, N] (allowed), once for the whole sweep: the store keeps no warnings."""
    from .. import grid
    from ..results import CHI_OUTSIDE

    # the last width depends on the N coordinate alone (a width, or an 'axb' item): not every task's
    widths = sorted({grid.widths_of(g, {"N": n, "depth": 1})[-1] for n in g.coords["N"]})
    out = sorted({(N, chi) for N in widths for chi in g.chi_values(N) if chi < 1 or chi > N})
    if out:
        pairs = ", ".join(f"chi = {chi:g} at N = {N}" for N, chi in out[:6]) + (", ..." if len(out) > 6 else "")
        say(f"msat: warning: {pairs} outside [1, N] {CHI_OUTSIDE}")


def _say_notes(out) -> None:
    """One line when tasks hold points a method does not cover or whose solver did not converge: they are data
    (NaN where a point has no value, converged false), and the store's `note` says why; without this line a sweep
    would pass in silence."""
    import xarray as xr

    try:
        notes = xr.open_zarr(out)["note"].values.ravel()
    except (OSError, KeyError, ValueError):
        return
    noted = [str(n) for n in notes if str(n)]
    if noted:
        say(f"msat sweep: {len(noted)} of {len(notes)} tasks hold points not covered or not converged "
            f"(the store's variable 'note' says why; the first: {noted[0][:200]})")
