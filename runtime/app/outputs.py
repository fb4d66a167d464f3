"""Where a command's results go (docs/cli.md): the JSON file, written whole or not at all; standard output;
the summary table; warnings on stderr. A stream that is closed or full is the user's redirection, not a bug:
writing the results there is bad input (exit 2), while the table and warnings, which only repeat what the
files hold, are skipped and never cost the files."""
from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path

from ..errors import InputError


def stderr_is_terminal() -> bool:
    """Whether progress bars may be drawn (false where stderr is closed: `2>&-` leaves sys.stderr None)."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (OSError, ValueError):  # a closed or detached stream
        return False


def say(text: str) -> None:
    """One line on stderr, or nothing where stderr cannot take it (closed, full, a broken pipe)."""
    try:
        if sys.stderr is not None:
            print(text, file=sys.stderr)
    except (OSError, ValueError):
        pass


def write(path: Path, text: str) -> None:
    """The file at `path` holds `text`, or (on failure: a full disk, a file-size limit) whatever it held
    before: the text goes to a temporary file beside it, then replaces it."""
    path = Path(path)
    target = path.resolve()  # through a symlink: the file it names is replaced, the link kept
    if target.exists() and not target.is_file():
        # a device or a pipe (/dev/null, /dev/stdout, a FIFO) is written into, never replaced: replacing
        # `--json /dev/full` (as root) put a regular file where the device was
        try:
            with open(target, "w") as f:
                f.write(text)
        except OSError as err:
            raise InputError(f"cannot write {path}: {err.strerror}") from None
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        if target.exists():  # keep the permissions the user gave the file
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {err.strerror}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def to_stdout(text: str) -> None:
    """The results on standard output; InputError where it is closed or cannot take them."""
    if sys.stdout is None:  # started with standard output closed (>&-)
        raise InputError("cannot write the results to standard output: it is closed (give --json FILE)")
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (OSError, ValueError) as err:  # a full disk or a closed pipe: the user's redirection, not a bug
        raise InputError("cannot write the results to standard output: "
                         f"{getattr(err, 'strerror', None) or err}") from None


def print_warnings(results):
    """Each distinct warning once on stderr, in order; in a ladder, one that only some points carry names them."""
    where: dict = {}  # warning -> the chi of the points that carry it (dicts keep order)
    for r in results:
        for w in r.warnings:
            where.setdefault(w, {})[r.chi] = None
    for w, chis in where.items():
        some = 1 < len(results) and len(chis) < len(results) and not w.startswith("chi = ")  # it names its chi
        at = "chi = " + ", ".join(f"{c:g}" for c in chis) + ": " if some else ""
        say(f"msat: warning: {at}{w}")


def table(results, stderr=False, command="predict"):
    """The summary table (on stderr where stdout holds the JSON); skipped where its stream cannot take it,
    returning why (None when shown)."""
    from rich.console import Console
    from rich.table import Table

    from .report import fit_width

    stream = sys.stderr if stderr else sys.stdout
    if stream is None:
        return "it is closed"
    t = Table(title=f"msat {command}")
    for col in ("chi", "method", "order", "converged", "s_mean", "s_var", "|train mean|",
                "mean test var", "seconds"):
        t.add_column(col, justify="right")
    for r in results:
        if not r.has_values:
            t.add_row(f"{r.chi:g}", "-", "-", "no", "-", "-", "-", "-", "-")
            continue
        tv = r.test_var
        t.add_row(f"{r.chi:g}", r.method, "-" if r.order is None else str(r.order), "yes" if r.converged else "no",
                  "-" if r.s_mean is None else f"{r.s_mean:.6g}",
                  "-" if r.s_var is None else f"{r.s_var:.3g}",
                  f"{math.sqrt(float((r.train_mean ** 2).mean())) if r.train_mean.size else 0.0:.6g}",
                  f"{tv.mean():.4g}" if tv.size else "-", f"{r.seconds:.3g}")
    console = Console(file=stream)
    fit_width(console, t)
    try:
        console.print(t)
        stream.flush()
    except (OSError, ValueError) as err:
        return str(getattr(err, "strerror", None) or err)
    return None
