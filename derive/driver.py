"""Driver: derive -> emit -> write/check generated/ (the `msat derive` command).

Phases, in order:
  ``specify``   derive.kernels.modules(max_order, max_depth): SymPy expressions per kernel (action, saddle
                derivatives, loop weights, observables);
  ``emit``      derive.emit.assemble: cse + printing + Jinja2, one module text per file;
  ``write`` / ``check``: files on disk vs a fresh emission (unified diff when they differ).
"""
from __future__ import annotations

import difflib
from pathlib import Path

from . import emit as _emit
from . import kernels, limits

DEFAULT_ORDER = 3
DEFAULT_DEPTH = 3
GENERATED_DIR = Path(__file__).resolve().parent.parent / "generated"


def specify(max_order: int, max_depth: int = DEFAULT_DEPTH):
    return kernels.modules(max_order, max_depth)


def emit(max_order: int = DEFAULT_ORDER, max_depth: int = DEFAULT_DEPTH) -> dict:
    """{filename: text} for every generated file, including the registry and MANIFEST: loop orders
    0..max_order, deep linear networks of depth 1..max_depth (docs/theory.md §2d)."""
    files = {}
    for name, (title, doc, derivation, order, nmax, specs) in specify(max_order, max_depth).items():
        files[f"{name}.py"] = _emit.assemble(title, doc, derivation, order, nmax, specs)
    files[f"{_emit.LOWERED}.py"] = _emit.assemble_lowered()
    files["__init__.py"] = _registry(max_order, max_depth)
    files["MANIFEST"] = "".join(
        f"{name}  {_emit.content_hash(_emit.split_header(text)[1])}\n"
        for name, text in sorted(files.items())
        if name.endswith(".py")
    )
    return files


def _registry(max_order: int, max_depth: int) -> str:
    env = _emit.environment()
    return env.get_template("registry.py.j2").render(max_order=max_order, max_depth=max_depth,
                                                     derivable_order=limits.MAX_ORDER,
                                                     derivable_depth=limits.MAX_DEPTH)


def write(out_dir: Path, files: dict) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out_dir / name).write_text(text)


def check(out_dir: Path, files: dict) -> list[str]:
    """Unified diffs (empty list when the directory matches a fresh emission)."""
    out_dir = Path(out_dir)
    diffs = []
    for name, text in sorted(files.items()):
        path = out_dir / name
        old = path.read_text() if path.exists() else ""
        if old != text:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        old.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        fromfile=f"{path} (checked in)",
                        tofile=f"{name} (fresh emission)",
                        n=1,
                    )
                )
                or f"{path}: missing\n"
            )
    # a module the emitter does not write would still be importable, unchecked by any hash
    stray = [p for p in sorted(out_dir.glob("*.py")) if p.name not in files]
    diffs += [f"{p}: not emitted by msat derive (remove it)\n" for p in stray]
    return diffs


def checked_in_order(out_dir: Path = GENERATED_DIR) -> int:
    """Highest loop order present in a generated folder (what --check compares against)."""
    orders = [int(p.stem.split("_o")[1]) for p in Path(out_dir).glob("rescaling_o*.py")]
    return max(orders) if orders else DEFAULT_ORDER


def checked_in_depth(out_dir: Path = GENERATED_DIR) -> int:
    """Highest depth of the deep-network modules in a generated folder."""
    depths = [int(p.stem.split("_d")[1].split("_")[0]) for p in Path(out_dir).glob("deep_layers_d*_o*.py")]
    return max(depths) if depths else DEFAULT_DEPTH
