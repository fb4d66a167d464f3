"""The derive-side commands of `msat` (the contract in docs/cli.md): ``msat derive`` regenerates generated/
(``--check`` compares it with a fresh emission) and ``msat latex`` prints the derived terms.

Exit codes: 0 success, 1 ``--check`` found files that differ, 2 bad input (UsageError).
SymPy is imported only when a command runs.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from .limits import MAX_DEPTH, MAX_ORDER


class UsageError(ValueError):
    """A bad argument: one line on stderr, exit code 2."""

    exit_code = 2


def _integer(flag):
    """An argparse type: ASCII decimal digits with an optional minus sign (int() also takes "0_1", "+1" and
    other scripts' digits, which predict's options refuse)."""
    import argparse
    import re

    def conv(text):
        if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}")
        return int(text)
    return conv


def add_parsers(sub) -> None:
    d = sub.add_parser("derive", help="regenerate generated/ (the numba kernels) from derive/")
    d.add_argument("--order", type=_integer("--order"), default=None,
                   help="highest loop order to emit (default: 3, or what the folder records for --check)")
    d.add_argument("--depth", type=_integer("--depth"), default=None,
                   help="highest depth of the deep linear network modules (default: 3, or what the folder "
                        "records for --check)")
    d.add_argument("--out", default=None, help="output folder (default: generated/)")
    d.add_argument("--check", action="store_true",
                   help="exit 1 when the folder differs from a fresh emission (prints a diff)")
    d.set_defaults(handler=derive)

    lt = sub.add_parser("latex", help="LaTeX of the derived terms, order by order")
    lt.add_argument("--order", type=_integer("--order"), default=1,
                    help="highest loop order whose terms are printed (default: 1)")
    lt.add_argument("--observable", default=None,
                    help="train_mean, test_mean, test_var, field_s or resolvent (default: a generic O)")
    lt.add_argument("--markdown", action="store_true", help="the docs/formulas.md page")
    lt.add_argument("--depth", type=_integer("--depth"), default=None,
                    help="a deep linear network with this many hidden layers (docs/theory.md §2d)")
    lt.set_defaults(handler=latex)


def derive(args) -> int:
    from . import driver

    if args.out is not None and not args.out.strip():  # Path('') is '.': the files would land where msat ran
        raise UsageError("--out is empty: name a folder")
    out = driver.GENERATED_DIR if args.out is None else Path(args.out)
    if args.order is not None:
        _check_order(args.order)
    if args.depth is not None:
        _check_depth(args.depth)
    if args.check and not Path(out).is_dir():
        raise UsageError(f"--check: no folder {out} to compare with a fresh emission")
    if args.check and not any(Path(out).glob("*.py")):  # else a diff of every module, thousands of lines
        raise UsageError(f"--check: {out} holds no Python modules to compare (msat derive --out {out} emits them)")
    if not args.check:
        try:  # before the emission, which takes minutes at high order: the folder, and a file in it
            Path(out).mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=out).close()
        except OSError as err:  # an audit: "File exists" where a file of the folder's name was there
            why = "a file of that name is there" if Path(out).exists() and not Path(out).is_dir() else err.strerror
            raise UsageError(f"cannot write {out}: {why}" + ("" if args.out else "; emit into a folder "
                             "of your own with --out DIR")) from None
        if args.out is None and {"site-packages", "dist-packages"} & set(Path(out).resolve().parts):
            print(f"msat derive: writing into the installed package ({out}): reinstalling msat replaces these "
                  "files; an editable install of a clone (pip install -e .) keeps them in the clone", file=sys.stderr)
    if args.check:
        order = args.order if args.order is not None else driver.checked_in_order(out)
        depth = args.depth if args.depth is not None else driver.checked_in_depth(out)
        # what the folder's MANIFEST records, or without one its registry's header or (never above the default) its
        # file names: a stray rescaling_o99.py in a folder of strays would start an emission of hours
        over = [f"{name} {v} (msat derives up to {top})" for name, v, top in
                (("order", order, MAX_ORDER), ("depth", depth, MAX_DEPTH)) if v > top]
        if over:
            raise UsageError(f"--check: {out} holds a module of {' and '.join(over)}: remove the stray file or "
                             "pass --order/--depth")
        found = driver.findings(out, driver.emit(order, depth))
        if found:
            sys.stdout.write("".join(f.text for f in found))
            where = "" if args.out is None else f" --out {out}"
            foreign = sum(f.state == "stray" for f in found)  # msat derive keeps these: by hand
            update = (f"run `msat derive --order {order} --depth {depth}{where}` to update" if foreign < len(found)
                      else "")
            remove = f"remove the {foreign} file(s) not written by msat derive by hand" if foreign else ""
            named = ", ".join(f"{f.name if f.name.isprintable() else ascii(f.name)} {f.state}" for f in found[:4])
            named += f", {len(found) - 4} more" if len(found) > 4 else ""
            print(f"msat derive --check: {len(found)} file(s) in {out} differ from a fresh emission ({named}); "
                  + "; ".join(x for x in (update, remove) if x), file=sys.stderr)
            return 1
        print(f"msat derive --check: {out} matches a fresh emission (orders 0..{order}, depths 1..{depth})")
        return 0
    order = args.order if args.order is not None else driver.DEFAULT_ORDER
    depth = args.depth if args.depth is not None else driver.DEFAULT_DEPTH
    files = driver.emit(order, depth)
    try:
        driver.write(out, files)
    except OSError as err:
        raise UsageError(f"cannot write {out}: {err.strerror}") from None
    print(f"wrote {len(files)} files to {out} (orders 0..{order}, depths 1..{depth})")
    return 0


def latex(args) -> int:
    from . import latex as _latex, model

    _check_order(args.order)
    if args.observable is not None:
        names = [o.name for o in model.observables()]
        if args.observable not in names:
            raise UsageError(f"unknown observable {args.observable!r} (choose from {', '.join(names)})")
    if args.depth is not None:
        from . import driver

        _check_depth(args.depth)
        if args.markdown or args.observable:
            raise UsageError("--depth prints the deep series for a generic O; drop --markdown and --observable")
        have_depth, have_order = driver.checked_in_depth(), driver.checked_in_order()
        if args.depth > have_depth or args.order > have_order:  # the command keeps what is generated
            raise UsageError(f"depth {args.depth} at loop order {args.order} is not generated; run `msat derive "
                             f"--order {max(args.order, have_order)} --depth {max(args.depth, have_depth)}` to emit it")
        from .latex_deep import deep_text

        sys.stdout.write(deep_text(args.depth, args.order))
        return 0
    if args.markdown and args.observable:
        raise UsageError("--markdown prints the docs/formulas.md page with every observable; drop --observable")
    sys.stdout.write(_latex.document(args.order) if args.markdown else _latex.text(args.order, args.observable))
    return 0


def _check_depth(depth):
    _check_range("--depth", depth, 1, MAX_DEPTH, "a positive integer", f"the deep modules' derivation grows with "
                 f"depth (depth {MAX_DEPTH} takes ~30 s, depth 99 more than five minutes)")


def _check_order(order):
    _check_range("--order", order, 0, MAX_ORDER, "a non-negative integer", "the derivation's cost grows about "
                 "fourfold per order (on two cores order 4 takes about 30 s, order 6 several minutes)")


def _check_range(flag, value, low, high, kind, why):
    """Refuse (exit 2) a value below `low` or one above `high`, whose derivation would run for far too long."""
    if value < low:
        raise UsageError(f"{flag} must be {kind}, got {value}")
    if value > high:
        raise UsageError(f"{flag} {value} is above {high}: {why}")
