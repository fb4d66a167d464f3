"""The `msat` console: parses the command line and dispatches; nothing else.

derive and latex belong to the derive side (msat.derive.commands); predict, sample and run to
the runtime (msat.runtime.app.cli). Errors become exit codes without a traceback: an error with
an ``exit_code`` (2 bad input, 3 solver failed) prints its one line (and diagnostics); anything
else is a bug, reported in one line with a pointer to MSAT_DEBUG=1 for the traceback.
"""
from __future__ import annotations

import argparse
import errno
import os
import re
import sys
from importlib import import_module

from ..errors import missing_generated
from .outputs import say

#: modules that add subcommands (``add_parsers(sub)``, each setting a ``handler``)
COMMAND_MODULES = ("msat.derive.commands", "msat.runtime.app.cli", "msat.runtime.app.sweep")


class UsageError(Exception):
    exit_code = 2


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit code 2."""

    #: a value that starts with a minus and then a digit is a value, not an option: argparse's own
    #: matcher takes -20 and -0.5 but not -20,30 or -1e-3, which then gave "expected one argument"
    #: instead of the option's own message about a negative value; -inf and -nan likewise
    NEGATIVE_VALUE = re.compile(r"^-(\.?\d[\w.,+:-]*|(?i:inf|infinity|nan)(,[\w.,+:-]*)?)$")

    def __init__(self, *args, **kwargs):
        # a prefix of a flag is not that flag: `--mc 1000` or a typo that happens to be a prefix would
        # otherwise set whichever option it abbreviates
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = self.NEGATIVE_VALUE

    def refuse_prefixes(self, argv) -> None:
        """An option spelled as a prefix of one of this command's names is named as such, before argparse's check
        of required options says only that --kappa is missing (an outside audit: `--kap 0.5`)."""
        for token in argv:
            if token == "--":
                break
            name = token.split("=", 1)[0]
            if token.startswith("--") and name not in self._option_string_actions:
                near = sorted(o for o in self._option_string_actions if o.startswith(name))
                if near:
                    self.error(f"unrecognized option {name}: options are not abbreviated (did you mean "
                               f"{' or '.join(near)}?)")

    def refuse_repeats(self, argv) -> None:
        """A flag given twice (in either spelling of its name) is a usage error: argparse would keep the
        last value and drop the first without a word."""
        seen = {}
        for token in argv:
            if token == "--":
                break
            action = self._option_string_actions.get(token.split("=", 1)[0]) if token.startswith("--") else None
            if action is None or action.dest == "help" or isinstance(action, argparse._AppendAction):
                continue  # an appending option (sweep --sel) is repeatable by design
            name = token.split("=", 1)[0]
            if action.dest in seen:
                first = seen[action.dest]
                also = "" if first == name else f" (as {first})"
                self.error(f"{name} is given more than once{also}: give each option once")
            seen[action.dest] = name

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    from ..labelled import msat_version

    p = Parser(prog="msat", description="Multi-scale adaptive theory of feature learning.")
    p.add_argument("--version", action="version", version=f"msat {msat_version()}")
    sub = p.add_subparsers(dest="command", parser_class=Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        import_module(name).add_parsers(sub)
    p.subcommands = sub
    return p


def utf8(text) -> str:
    """text with bytes that are not UTF-8 (surrogate escapes of argv and file names) written as \\xff:
    netCDF attributes must be UTF-8."""
    return os.fsencode(str(text)).decode("utf-8", "backslashreplace")


def command_line(argv) -> str:
    import shlex

    return "msat " + " ".join(shlex.quote(utf8(a)) for a in argv)


#: errors of a path named on the command line (the user's to change), as opposed to msat's own failures
USER_PATH_ERRORS = (errno.ENAMETOOLONG, errno.ENOENT, errno.EACCES, errno.EROFS, errno.ENOSPC, errno.ENOTDIR,
                    errno.EISDIR, errno.EPERM)


def main(argv=None) -> int:
    try:
        parser = build_parser()
        tokens = [str(t) for t in (sys.argv[1:] if argv is None else argv)]
        named = next((t for t in tokens if t in parser.subcommands.choices), None)
        if named is not None:
            parser.subcommands.choices[named].refuse_prefixes(tokens[tokens.index(named) + 1:])
        args = parser.parse_args(argv)
        command = parser.subcommands.choices.get(args.command)
        if command is not None:
            command.refuse_repeats(tokens[tokens.index(args.command) + 1:] if args.command in tokens else tokens)
        for name in ("activation", "method", "estimator", "readout"):
            # names of choices in one spelling for every consumer of args (values.choice: NNGP is nngp)
            if isinstance(getattr(args, name, None), str):
                setattr(args, name, getattr(args, name).strip().lower())
        # the command as the user typed it, for the provenance attributes of the files written
        args.command_line = command_line(sys.argv[1:] if argv is None else argv)
        from ..predict import quiet

        with quiet():  # the commands print results' warnings as lines of their own
            return args.handler(args)
    except KeyboardInterrupt:
        say("msat: interrupted")
        return 130
    except Exception as err:  # noqa: BLE001 - every error becomes an exit code, never a traceback
        code = getattr(err, "exit_code", None)
        if isinstance(code, int):
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            say(msg if msg.startswith("msat") else f"msat: error: {msg}")
            diag = getattr(err, "diagnostics", None)
            if diag:
                say("msat: diagnostics: " + ", ".join(f"{k}={v}" for k, v in diag.items()))
            return code
        if missing_generated(err):
            say(f"msat: error: {missing_generated(err)}")
            return 2
        if isinstance(err, MemoryError):  # past the memory estimate: an address-space limit, other processes
            say("msat: error: out of memory: ask for less (P, P_test, N, chi points, draws)")
            return 2
        if isinstance(err, OSError) and err.errno in USER_PATH_ERRORS and err.filename:
            # a path the system refuses (too long, not there, not allowed, disk full) wherever it is first
            # touched: the user's to change, as every other path checked before the work
            say(f"msat: error: cannot use {os.fsencode(str(err.filename)).decode('utf-8', 'backslashreplace')}: "
                f"{err.strerror}")
            return 2
        if os.environ.get("MSAT_DEBUG"):
            raise
        say(f"msat: internal error: {type(err).__name__}: {err} (set MSAT_DEBUG=1 for the traceback; please "
            "report it)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
