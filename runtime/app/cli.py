"""The run-time commands of `msat` (the contract in docs/cli.md): predict, sample, run.

Arguments are parsed into numbers here and validated once, by runtime.params / runtime.values,
like every API call. Exit codes: 0 success, 2 bad input, 3 a solver did not converge (a ladder
keeps the points before the failure); runtime.app.console maps errors to them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

from ..errors import InputError
from .outputs import print_warnings, say, stderr_is_terminal, table as _table, to_stdout as _to_stdout, write as _write

#: a built-in set's sizes where --P, --D, --P-test are not given (None in the parser: with --data they are errors)
BUILTIN_SIZES = {"P": 200, "D": 100, "P_test": 20}


def number(name):
    """An argparse type: the text as an int when it is one, else a float (validated later)."""
    def conv(text):
        from ..values import from_text, is_number  # numpy only once a number is parsed: `msat --help` stays light

        try:  # an integer as one (an exact seed), anything else through the number grammar's checks
            return int(text) if is_number(text) and text.strip().lstrip("+-").isdigit() else from_text(name, text)
        except InputError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return conv


def _data_options(p) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help=".npz (X, y, optional X_test) or .csv file")
    src.add_argument("--dataset", help="built-in data set: ising or teacher")
    p.add_argument("--target", default=None, help="target column of a CSV file (default y)")
    for opt, key, what in (("--P", "P", "train points"), ("--D", "D", "input dimension"),
                           ("--P-test", "P_test", "test points")):
        p.add_argument(opt, dest=key, type=number(opt), default=None,
                       help=f"built-in set: {what} (default {BUILTIN_SIZES[key]})")
    p.add_argument("--seed", type=number("--seed"), default=0,
                   help="seed of the built-in set and of every Monte Carlo")


def _model_options(p) -> None:
    p.add_argument("--N", type=number("--N"), default=None,
                   help="hidden width (required unless --widths is given)")
    p.add_argument("--depth", type=number("--depth"), default=None, help="number of hidden layers of width N")
    p.add_argument("--widths", default=None, help="widths of the hidden layers, first to last: N1,N2,...")
    p.add_argument("--chi", required=True, help="scaling parameter, one value or a ladder 1,2,5")
    p.add_argument("--kappa", type=number("--kappa"), required=True, help="output noise")
    p.add_argument("--g-v", dest="g_v", type=number("--g-v"), default=1.0, help="readout prior scale")
    p.add_argument("--g-w", dest="g_w", default="1",
                   help="hidden prior scale: one value or one per layer (g1,g2,...)")
    p.add_argument("--activation", default="linear", help="linear, erf or relu")


def _out_path(text):
    """An output path; '-' exactly (not './-', a file of that name) is stdout."""
    return text if text == "-" else Path(text)


def _output_options(p) -> None:
    p.add_argument("--json", type=_out_path, default=None,
                   help="write results here ('-' for stdout); without it JSON goes to stdout")
    p.add_argument("--table", action="store_true", help="print a summary table")
    p.add_argument("--nc", type=_out_path, default=None,
                   help="also write the results in the sweep's labelled form (netCDF, opens with xarray)")


def _sampling_options(p) -> None:
    p.add_argument("--samples", type=number("--samples"), default=None, help="sample: draws per chain (1000)")
    p.add_argument("--chains", type=number("--chains"), default=None,
                   help="sample: number of chains (4; 16 where a non-linear layer has at most 4 units)")
    p.add_argument("--readout", default="sampled",
                   help="sample: 'sampled' (HMC over all weights) or 'marginal' (hidden weights only, the "
                        "readout integrated out exactly, outputs Rao-Blackwellised; one hidden layer)")


def _method_options(p, methods) -> None:
    p.add_argument("--method", default=None, help=methods)
    p.add_argument("--order", type=number("--order"), default=None,
                   help="loop or kernel-adaptation order (default 1; erf/relu adaptive: 2 while its field is small)")
    p.add_argument("--dressed", action="store_true", help="loop series around the full saddle")
    p.add_argument("--estimator", default="auto", help="non-linear adaptive: cumulant, mc (single-neuron MALA) or auto")
    p.add_argument("--mc-samples", dest="mc_samples", type=number("--mc-samples"), default=None,
                   help="non-linear adaptive: Monte Carlo draws (cumulant: prior draws; mc: 300 per chain)")


def add_parsers(sub) -> None:
    pr = sub.add_parser("predict", help="posterior predictions of a network with one or more hidden layers")
    _data_options(pr)
    _model_options(pr)
    _method_options(pr, "nngp, exact, loop, adaptive or sample")
    _output_options(pr)
    _sampling_options(pr)
    pr.set_defaults(handler=_cmd_predict)

    sa = sub.add_parser("sample", help="sample finite networks from the posterior (HMC)")
    _data_options(sa)
    _model_options(sa)
    _method_options(sa, "sample only (msat sample takes predict --method sample's options)")
    _output_options(sa)
    _sampling_options(sa)
    sa.add_argument("--draws", type=_out_path, default=None,
                    help="save the raw draws: .npz, or .nc for ArviZ InferenceData")
    sa.set_defaults(handler=_cmd_predict, method="sample")

    rn = sub.add_parser("run", help="the main job: the paper's headline comparison on the Ising task")
    rn.add_argument("--out", default="msat-run", help="output folder (default msat-run)")
    rn.add_argument("--quick", action="store_true", help="smaller sizes (linear about 15 s, erf/relu a few minutes)")
    rn.add_argument("--activation", default="linear", help="linear, erf or relu")
    rn.add_argument("--depth", type=number("--depth"), default=1,
                    help="hidden layers of width N (default 1; depth > 1: linear networks)")
    rn.set_defaults(handler=_cmd_run)


def _cmd_run(args) -> int:
    from .run import run

    res = run(args.out, quick=args.quick, activation=args.activation, depth=args.depth,
              progress=stderr_is_terminal() or "lines")
    return 0 if all(c["status"] == "PASS" for c in res["checks"]) else 1


def check_source(args) -> None:
    """Refuse data options that do not go with the source (predict and sweep): silently ignoring them would
    mislead."""
    if args.data is not None:
        given = [k for k, v in (("--P", args.P), ("--D", args.D), ("--P-test", args.P_test)) if v is not None]
        if given:  # a file's sizes are its own
            verb = "go" if len(given) > 1 else "goes"
            raise InputError(f"{', '.join(given)} {verb} with --dataset; --data {args.data.name} has its own sizes")
        if args.target is not None and args.data.suffix.lower() != ".csv":
            raise InputError(f"--target names a column of a .csv file; {args.data.name} is not one")
    elif args.target is not None:
        raise InputError("--target names a column of a .csv file (--data), not of a built-in set")


def _load_data(args, check=None):
    from .. import data

    check_source(args)
    if args.data is not None:
        return data.load(args.data, target="y" if args.target is None else args.target)
    sizes = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in BUILTIN_SIZES.items()}
    if check is not None:  # the request checked (memory included) before its data are made
        check(**sizes)
    return data.builtin(args.dataset, **sizes, seed=args.seed)


def _source_params(args) -> dict:
    """The data a command's results were fitted to, for their "params": a built-in set's name and seed, or a
    file's path and the SHA-256 of its bytes (and a CSV file's target column)."""
    if args.data is None:
        return {"dataset": args.dataset.strip().lower(), "seed": args.seed}
    out = {"data": str(args.data), "data_sha256": hashlib.sha256(Path(args.data).read_bytes()).hexdigest()}
    if args.data.suffix.lower() == ".csv":
        out["target"] = "y" if args.target is None else args.target
    return out


def _writable_before_work(path):
    """InputError now, not after the sampling, where an output file's folder does not exist, where the
    path is a folder, or where an existing file there cannot be written."""
    if path is None or path == "-":
        return
    target = Path(path).resolve()
    if not target.parent.is_dir():
        what = "is a file" if target.parent.exists() else "does not exist"
        raise InputError(f"cannot write {path}: its folder {target.parent} {what}")
    if target.is_dir():
        raise InputError(f"cannot write {path}: it is a folder")
    if target.exists() and not os.access(target, os.W_OK):
        raise InputError(f"cannot write {path}: the file is not writable")
    if not target.exists():
        # os.access says yes to root in read-only places (/proc, a read-only mount): create and remove it
        try:
            target.open("x").close()
            target.unlink()
        except OSError as err:
            raise InputError(f"cannot write {path}: {err.strerror or err}") from None


def _identity(path):
    """What makes two paths one file: device and inode where it exists (a hard link is the same file under
    another name), else the resolved path (symbolic links followed)."""
    where = Path(path).resolve()
    try:
        st = where.stat()
    except OSError:
        return where
    return st.st_dev, st.st_ino


def _outputs_before_work(args) -> None:
    """Every output file writable, none of them the input data and no two the same file (--json x --draws x
    wrote the JSON over the draws), before any work."""
    named = [(f"--{k}", getattr(args, k, None)) for k in ("json", "nc", "draws")]
    named = [(flag, p) for flag, p in named if p is not None and p != "-"]
    for _, path in named:
        _writable_before_work(path)
    seen = {} if args.data is None else {_identity(args.data): "--data"}
    for flag, path in named:
        where = _identity(path)
        if where in seen:
            raise InputError(f"{flag} {path} is the file of {seen[where]}: name another file")
        seen[where] = flag


def _cmd_predict(args) -> int:
    import numpy as np

    from .. import grid, labelled, params
    from ..predict import predict
    from ..values import chi_ladder
    from . import export

    if getattr(args, "command", None) == "sample" and str(args.method).strip().lower() != "sample":
        raise InputError(f"msat sample runs --method sample, got --method {args.method}: use msat predict for it")
    chis, _ = chi_ladder(args.chi)
    draws = [] if getattr(args, "draws", None) is not None else None
    _outputs_before_work(args)
    if getattr(args, "nc", None) is not None and Path(args.nc).suffix != ".nc":
        raise InputError(f"--nc {args.nc}: the file is .nc (netCDF, the sweep's labelled form)")
    if draws is not None and Path(args.draws).suffix not in (".npz", ".nc"):
        raise InputError(f"--draws {args.draws}: the file is .npz or .nc (ArviZ InferenceData)")
    labelled_by_chi = [f for f, v in (("--nc", getattr(args, "nc", None)), ("--draws", getattr(args, "draws", None)))
                       if v is not None and Path(v).suffix == ".nc"]
    if labelled_by_chi and len(set(map(grid.token, chis))) != len(chis):  # a chi coordinate: one entry per value
        raise InputError(f"{labelled_by_chi[0]}: a netCDF file labelled by chi needs distinct chi values, "
                         f"got {args.chi}")
    opts = dict(N=args.N, widths=args.widths, depth=args.depth, kappa=args.kappa, g_v=args.g_v, g_w=args.g_w,
                activation=args.activation, method=args.method, order=args.order, dressed=args.dressed,
                estimator=args.estimator, seed=args.seed, mc_samples=args.mc_samples, samples=args.samples,
                chains=args.chains, readout=args.readout)
    ds = _load_data(args, check=lambda P, D, P_test: params.build(P, D, P_test, n_chi=len(chis), **opts))
    results = predict(ds.X, ds.y, ds.X_test, chi=chis, progress=stderr_is_terminal(), draws=draws, **opts)
    source, made_by = _source_params(args), labelled.provenance()
    for r in results:  # the data are parameters too: a result says which set (and seed) it was fitted to
        if r.has_values:
            r.params.update(source)
            r.extra["provenance"] = made_by  # which code made it: a published JSON shows it
    print_warnings(results)
    payload = [r.to_dict() for r in results] if "," in args.chi else results[0].to_dict()
    text = json.dumps(payload, indent=1, allow_nan=False)  # to_dict writes undefined numbers (NaN) as null
    to_file = args.json is not None and args.json != "-"
    to_stdout = args.json == "-" or (args.json is None and not args.table)
    if to_file:
        _write(args.json, text + "\n")
    elif to_stdout:
        _to_stdout(text + "\n")
    unshown = None  # why the table, where it is all that was asked for, could not be shown (exit 2, files first)
    if args.table or to_file:
        unshown = _table(results, stderr=to_stdout, command=getattr(args, "command", None) or "predict")
        if unshown and (to_file or to_stdout):  # the table repeats what the JSON holds
            say(f"msat: warning: the table was not shown ({unshown})")
            unshown = None
    # the labelled files after the JSON: a disk that fills up now does not take the results with it
    if draws is not None and not draws:  # the first point failed before its chains ended: no empty file
        say(f"msat: no draws written to {args.draws}: no point's chains finished")
    elif draws is not None and args.draws.suffix == ".nc":
        export.draws_nc(args.draws, draws, ds, args)
    elif draws is not None:
        flat = {f"chi{i}_{k}": v for i, d in enumerate(draws) for k, v in d.items()}
        try:
            np.savez(args.draws, **flat)
        except OSError as err:
            raise InputError(f"cannot write {args.draws}: {err.strerror}") from None
    if args.nc is not None:
        export.predict_nc(args.nc, results, ds, args, chis)
    if unshown:
        raise InputError(f"cannot show the results on standard output: {unshown}")
    failed = [r for r in results if not r.converged]
    if failed:
        f = failed[0]
        diag = ", ".join(f"{k}={v}" for k, v in f.diagnostics.items())
        say(f"msat: solver did not converge at chi = {f.chi:g}: {f.error}" + (f" ({diag})" if diag else ""))
        return 3
    return 0
