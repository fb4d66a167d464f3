"""The `msat` console: parses the command line and dispatches; nothing else.

derive and latex belong to the derive side (msat.derive.commands); predict, sample and run to
the runtime (msat.runtime.app.cli). Errors become exit codes without a traceback: an error with
an ``exit_code`` (2 bad input, 3 solver failed) prints its one line (and diagnostics); anything
else is a bug, reported in one line with a pointer to MSAT_DEBUG=1 for the traceback.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from importlib import import_module

#: modules that add subcommands (``add_parsers(sub)``, each setting a ``handler``)
COMMAND_MODULES = ("msat.derive.commands", "msat.runtime.app.cli", "msat.runtime.app.sweep")


class UsageError(Exception):
    exit_code = 2


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit code 2."""

    #: a value that starts with a minus and then a digit is a value, not an option: argparse's own
    #: matcher takes -20 and -0.5 but not -20,30 or -1e-3, which then gave "expected one argument"
    #: instead of the option's own message about a negative value
    NEGATIVE_VALUE = re.compile(r"^-\.?\d[\w.,+:-]*$")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = self.NEGATIVE_VALUE

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="msat", description="Multi-scale adaptive theory of feature learning.")
    sub = p.add_subparsers(dest="command", parser_class=Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        import_module(name).add_parsers(sub)
    return p


def command_line(argv) -> str:
    import shlex

    return "msat " + " ".join(shlex.quote(str(a)) for a in argv)


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        for name in ("activation", "method", "estimator", "readout"):
            # names of choices in one spelling for every consumer of args (values.choice: NNGP is nngp)
            if isinstance(getattr(args, name, None), str):
                setattr(args, name, getattr(args, name).strip().lower())
        # the command as the user typed it, for the provenance attributes of the files written
        args.command_line = command_line(sys.argv[1:] if argv is None else argv)
        return args.handler(args)
    except KeyboardInterrupt:
        print("msat: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every error becomes an exit code, never a traceback
        code = getattr(err, "exit_code", None)
        if isinstance(code, int):
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            print(msg if msg.startswith("msat") else f"msat: error: {msg}", file=sys.stderr)
            diag = getattr(err, "diagnostics", None)
            if diag:
                print("msat: diagnostics: " + ", ".join(f"{k}={v}" for k, v in diag.items()), file=sys.stderr)
            return code
        if os.environ.get("MSAT_DEBUG"):
            raise
        print(f"msat: internal error: {type(err).__name__}: {err} (set MSAT_DEBUG=1 for the "
              "traceback; please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
