"""A progress bar (rich) for long work, or nothing when disabled (not a terminal, tests)."""
from __future__ import annotations


class Progress:
    def __init__(self, total: int, enabled: bool, label: str):
        self.p = None
        if enabled:
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

    def close(self) -> None:
        if self.p:
            self.p.stop()


#: the live ladder bar's line for the point under way (set by runtime.ladder while a bar is shown)
_status = None


def show_status(describe) -> None:
    """Route status() to `describe` (the ladder bar's, for the point under way), or nowhere with None."""
    global _status
    _status = describe


def status(what: str) -> None:
    """Name the work under way inside one long point (an annealing step, order 2's loop) on the ladder's bar,
    where one is shown; nothing otherwise. A cold start can take minutes before its point ends."""
    if _status is not None:
        _status(what)
