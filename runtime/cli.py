"""The `msat` command line (DESIGN.md contract).

Exit codes: 0 success, 1 `derive --check` found stale files, 2 bad input (one line on stderr),
3 a solver did not converge (one line plus diagnostics on stderr). No tracebacks for either.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from .errors import InputError, MsatError


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit code 2."""

    def error(self, message):
        raise InputError(f"{self.prog}: {message}")


def _int_arg(name):
    def conv(text):
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
    return conv


def _float_arg(name):
    def conv(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        return v
    return conv


def _n_arg(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"N must be a positive integer, got {text!r}") from None
    if not math.isfinite(v) or v <= 0 or v != int(v):
        raise argparse.ArgumentTypeError(f"N must be a positive integer, got {text!r}")
    return int(v)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="msat", description="Multi-scale adaptive theory of feature learning.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True

    d = sub.add_parser("derive", help="regenerate generated/ (the numba kernels) from derive/")
    d.add_argument("--order", type=_int_arg("--order"), default=None,
                   help="highest loop order to emit (default: 3, or what is checked in for --check)")
    d.add_argument("--out", type=Path, default=None, help="output folder (default: generated/)")
    d.add_argument("--check", action="store_true",
                   help="exit 1 when the folder differs from a fresh emission (prints a diff)")

    lt = sub.add_parser("latex", help="LaTeX of the derived terms, order by order")
    lt.add_argument("--order", type=_int_arg("--order"), default=1)
    lt.add_argument("--observable", default=None,
                    help="train_mean, test_mean, test_var, field_s or resolvent (default: a generic O)")
    lt.add_argument("--markdown", action="store_true", help="the docs/formulas.md page")

    pr = sub.add_parser("predict", help="posterior predictions of a two-layer network")
    src = pr.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help=".npz (X, y, optional X_test) or .csv file")
    src.add_argument("--dataset", choices=None, help="built-in data set: ising or teacher")
    pr.add_argument("--target", default="y", help="target column of a CSV file")
    pr.add_argument("--P", type=_int_arg("--P"), default=200, help="built-in set: train points")
    pr.add_argument("--D", type=_int_arg("--D"), default=100, help="built-in set: input dimension")
    pr.add_argument("--P-test", dest="P_test", type=_int_arg("--P-test"), default=20)
    pr.add_argument("--seed", type=_int_arg("--seed"), default=0)
    pr.add_argument("--N", type=_n_arg, required=True, help="hidden width")
    pr.add_argument("--chi", required=True, help="scaling parameter, one value or a ladder 1,2,5")
    pr.add_argument("--kappa", type=_float_arg("--kappa"), required=True, help="output noise")
    pr.add_argument("--g-v", dest="g_v", type=_float_arg("--g-v"), default=1.0)
    pr.add_argument("--g-w", dest="g_w", type=_float_arg("--g-w"), default=1.0)
    pr.add_argument("--activation", default="linear", help="linear, erf or relu")
    pr.add_argument("--method", default=None, help="nngp, exact, loop, adaptive or sample")
    pr.add_argument("--order", type=_int_arg("--order"), default=1, help="loop order")
    pr.add_argument("--dressed", action="store_true", help="loop series around the full saddle")
    pr.add_argument("--estimator", default="auto",
                    help="non-linear adaptive: cumulant, mc (single-neuron MALA) or auto")
    pr.add_argument("--mc-samples", dest="mc_samples", type=_int_arg("--mc-samples"), default=None,
                    help="non-linear adaptive: Monte Carlo draws (cumulant: prior draws; mc: 300 per chain)")
    pr.add_argument("--json", type=Path, default=None,
                    help="write results here ('-' for stdout); without it JSON goes to stdout")
    pr.add_argument("--table", action="store_true", help="print a summary table")
    pr.add_argument("--samples", type=_int_arg("--samples"), default=1000, help="sample: draws per chain")
    pr.add_argument("--chains", type=_int_arg("--chains"), default=4, help="sample: number of chains")

    sa = sub.add_parser("sample", parents=[], help="sample finite networks from the posterior (HMC)",
                        add_help=True)
    # the predict options that mean something for sampling (no loop order, estimator, ...)
    for action in pr._actions:
        if action.dest in ("help", "method", "order", "dressed", "estimator", "mc_samples"):
            continue
        sa._add_action(action)
    sa.set_defaults(order=1, dressed=False, estimator="auto", mc_samples=None)
    sa.add_argument("--draws", type=Path, default=None, help="save the raw draws (.npz)")
    sa._mutually_exclusive_groups.append(src)
    rn = sub.add_parser("run", help="the main job: the paper's headline comparison on the Ising task")
    rn.add_argument("--out", type=Path, default=Path("msat-run"), help="output folder (default msat-run)")
    rn.add_argument("--quick", action="store_true", help="smaller sizes (under two minutes)")
    rn.add_argument("--activation", default="linear", help="linear or erf")
    return p


def _cmd_run(args) -> int:
    from .run import run

    return run(args.out, quick=args.quick, activation=args.activation, progress=sys.stderr.isatty())


def _cmd_derive(args) -> int:
    from msat.derive import driver

    out = args.out or driver.GENERATED_DIR
    if args.order is not None and args.order < 0:
        raise InputError(f"--order must be a non-negative integer, got {args.order}")
    if args.check:
        order = args.order if args.order is not None else driver.checked_in_order(out)
        diffs = driver.check(out, driver.emit(order))
        if diffs:
            sys.stdout.write("".join(diffs))
            print(f"msat derive --check: {len(diffs)} file(s) in {out} differ from a fresh "
                  "emission; run `msat derive` to update", file=sys.stderr)
            return 1
        print(f"msat derive --check: {out} matches a fresh emission (orders 0..{order})")
        return 0
    order = args.order if args.order is not None else driver.DEFAULT_ORDER
    files = driver.emit(order)
    driver.write(out, files)
    print(f"wrote {len(files)} files to {out} (orders 0..{order})")
    return 0


def _cmd_latex(args) -> int:
    from msat.derive import latex, model

    if args.order < 0:
        raise InputError(f"--order must be a non-negative integer, got {args.order}")
    if args.observable is not None:
        names = [o.name for o in model.observables()]
        if args.observable not in names:
            raise InputError(f"unknown observable {args.observable!r} (choose from {', '.join(names)})")
    sys.stdout.write(latex.document(args.order) if args.markdown else latex.text(args.order, args.observable))
    return 0


def _load_data(args):
    from . import data

    if args.data is not None:
        return data.load(args.data, target=args.target)
    return data.builtin(args.dataset, P=args.P, D=args.D, P_test=args.P_test, seed=args.seed)


def _table(results) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="msat predict")
    for col in ("chi", "method", "order", "converged", "s_mean", "s_var", "|train mean|",
                "mean test var", "seconds"):
        t.add_column(col, justify="right")
    for r in results:
        if not r.get("converged", False):
            t.add_row(f"{r['chi']:g}", "-", "-", "no", "-", "-", "-", "-", "-")
            continue
        tm = r["train_mean"]
        tv = r["test_var"]
        t.add_row(
            f"{r['params']['chi']:g}", r["method"], str(r["order"]), "yes",
            "-" if r["s_mean"] is None else f"{r['s_mean']:.6g}",
            "-" if r["s_var"] is None else f"{r['s_var']:.3g}",
            f"{math.sqrt(sum(v * v for v in tm) / max(len(tm), 1)):.6g}",
            f"{(sum(tv) / len(tv)) if tv else float('nan'):.4g}", f"{r['seconds']:.3g}",
        )
    console = Console()
    console.width = max(console.width, 110)  # keep the table readable in narrow or piped output
    console.print(t)


def _cmd_sample(args) -> int:
    args.method = "sample"
    return _cmd_predict(args)


def _cmd_predict(args) -> int:
    from .predict import parse_chi, predict

    ds = _load_data(args)
    chis = parse_chi(args.chi)
    draws = [] if getattr(args, "draws", None) is not None else None
    results = predict(ds.X, ds.y, ds.X_test, N=args.N, chi=chis, kappa=args.kappa, g_v=args.g_v,
                      g_w=args.g_w, activation=args.activation, method=args.method,
                      order=args.order, dressed=args.dressed, estimator=args.estimator,
                      seed=args.seed, mc_samples=args.mc_samples, samples=args.samples,
                      chains=args.chains, progress=sys.stderr.isatty(), draws=draws)
    if draws is not None:
        import numpy as np

        flat = {f"chi{i}_{k}": v for i, d in enumerate(draws) for k, v in d.items()}
        try:
            np.savez(args.draws, **flat)
        except OSError as err:
            raise InputError(f"cannot write {args.draws}: {err.strerror}") from None
    ladder = "," in args.chi
    for r in results:
        for w in r.get("warnings", []):
            print(f"msat: warning: {w}", file=sys.stderr)
    payload = results if ladder else results[0]
    text = json.dumps(payload, indent=1)
    if args.json is not None and str(args.json) != "-":
        try:
            args.json.write_text(text + "\n")
        except OSError as err:
            raise InputError(f"cannot write {args.json}: {err.strerror}") from None
    else:
        if not args.table:
            sys.stdout.write(text + "\n")
    if args.table or (args.json is not None and str(args.json) != "-"):
        _table(results)
    failed = [r for r in results if not r.get("converged", True)]
    if failed:
        f = failed[0]
        diag = ", ".join(f"{k}={v}" for k, v in f.get("diagnostics", {}).items())
        print(f"msat: solver did not converge at chi = {f['chi']:g}: {f['error']}"
              + (f" ({diag})" if diag else ""), file=sys.stderr)
        return 3
    return 0


COMMANDS = {"derive": _cmd_derive, "latex": _cmd_latex, "predict": _cmd_predict,
            "sample": _cmd_sample, "run": _cmd_run}


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except MsatError as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"msat: error: {msg}" if not msg.startswith("msat") else msg, file=sys.stderr)
        if getattr(err, "diagnostics", None):
            print("msat: diagnostics: " + ", ".join(f"{k}={v}" for k, v in err.diagnostics.items()),
                  file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("msat: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug, not a user mistake: one line, traceback on request
        if os.environ.get("MSAT_DEBUG"):
            raise
        print(f"msat: internal error: {type(err).__name__}: {err} (set MSAT_DEBUG=1 for the "
              "traceback; please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
