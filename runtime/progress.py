"""A progress bar (rich) for long work, or nothing when disabled (not a terminal, tests)."""
from __future__ import annotations

import contextlib


class Progress:
    """A bar on stderr (`enabled` True), nothing (False), or with `enabled` "lines" one plain line per step on
    stderr, for long work whose stderr is no terminal (`msat run` into a log: an hour with no word otherwise)."""

    def __init__(self, total: int, enabled, label: str):
        self.p, self.lines = None, None
        if enabled == "lines":
            import re
            import time

            self.lines = (re.sub(r"\[/?[a-z ]+\]", "", label), total, time.perf_counter(), [0])
        elif enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress as _Bar, TextColumn, TimeElapsedColumn

            # on stderr (docs/cli.md): stdout may be the JSON (`--json -`), which a bar would break
            self.p = _Bar(TextColumn(label + " {task.description}"), BarColumn(),
                          TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), transient=True,
                          console=Console(stderr=True))
            self.p.start()
            self.task = self.p.add_task("", total=total)

    def describe(self, what: str) -> None:
        """Name the work under way without counting a step."""
        if self.p:
            self.p.update(self.task, description=what)

    def step(self, what: str = "") -> None:
        if self.p:
            self.p.update(self.task, advance=1, description=what)
        elif self.lines:
            import sys
            import time

            label, total, t0, done = self.lines
            done[0] += 1
            try:
                print(f"{label}: {done[0]}/{total} {what} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr,
                      flush=True)
            except (OSError, ValueError):  # a closed or full stderr: the work goes on
                pass

    def close(self) -> None:
        if self.p:
            self.p.stop()


#: the live ladder bar's line for the point under way (set by runtime.ladder while a bar is shown)
_status = None


def show_status(describe) -> None:
    """Route status() to `describe` (the ladder bar's, for the point under way), or nowhere with None."""
    global _status
    _status = describe


#: the enclosing stages' names (within()), which every status() inside them leads with
_within: list[str] = []


def status(what: str) -> None:
    """Name the work under way inside one long point (an annealing step, a stage of the single-neuron saddle,
    order 2's loop) on the ladder's bar, where one is shown; nothing otherwise. A cold start can take minutes
    before its point ends, a relu continuation near mean-field scaling an hour."""
    if _status is not None:
        _status(": ".join(_within + [what]))


@contextlib.contextmanager
def within(what: str):
    """status(what), and lead every status() inside with it (a continuation's step is a whole solve, with
    stages of its own)."""
    status(what)
    _within.append(what)
    try:
        yield
    finally:
        _within.pop()
