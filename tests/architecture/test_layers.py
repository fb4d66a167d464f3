"""The design's structural rules (docs/architecture.md), read off the source with the ast module:

- data flows one way: generated/ imports nothing from msat but its own emitted helpers (generated/lowered.py),
  derive/ nothing from msat.runtime,
  and nothing imports upward inside the runtime (no import circle among msat's modules);
- generated kernels take plain arrays and scalars: no parameter of a generated function is called;
- no hand-written module in derive/ or runtime/ is longer than 300 lines.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"msat.derive": ROOT / "derive", "msat.generated": ROOT / "generated", "msat.runtime": ROOT / "runtime"}
MAX_LINES = 300


def _modules():
    """{module name: path} of every msat module."""
    out = {}
    for pkg, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([pkg, *parts])] = path
    return out


MODULES = _modules()


def _is_package(name):
    return MODULES[name].name == "__init__.py"


def _imports(name):
    """Modules of msat that ``name`` imports anywhere in its source (top level or in functions)."""
    path = MODULES[name]
    base = name if _is_package(name) else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                mod = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # "from pkg import sub" imports the submodule when there is one
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        else:
            continue
        found |= {t for t in targets if t.startswith("msat")}
    return found


GRAPH = {m: {t for t in _imports(m) if t in MODULES and t != m} for m in MODULES}


def test_generated_imports_nothing_from_derive_or_runtime():
    """generated/ is the leaf layer: its modules import no other part of msat; the one module they may import
    is generated/lowered.py, the helpers of the lowered matrix nodes, itself emitted (one copy for all)."""
    bad = {m: sorted(t for t in _imports(m) if t != "msat.generated.lowered")
           for m in MODULES if m.startswith("msat.generated")}
    assert not any(bad.values()), bad
    assert not _imports("msat.generated.lowered")


def test_derive_imports_nothing_from_runtime():
    bad = {m: sorted(t for t in _imports(m) if t.startswith("msat.runtime"))
           for m in MODULES if m.startswith("msat.derive")}
    assert not any(bad.values()), bad


def test_no_import_circle():
    """Depth-first search for a cycle in the import graph (explicit imports, lazy ones included)."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if state.get(t) == "open":
                cycle = stack[stack.index(t):] + [t]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(MODULES):
        if m not in state:
            visit(m)


def test_the_cycle_search_finds_a_planted_circle():
    GRAPH["msat.runtime.errors"].add("msat.runtime.predict")
    try:
        with pytest.raises(pytest.fail.Exception, match="import circle"):
            test_no_import_circle()
    finally:
        GRAPH["msat.runtime.errors"].discard("msat.runtime.predict")


def test_generated_kernels_take_no_callables():
    for m, path in MODULES.items():
        if not m.startswith("msat.generated"):
            continue
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef):
                continue
            params = {a.arg for a in fn.args.args}
            called = {c.func.id for c in ast.walk(fn) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            assert not (params & called), f"{m}.{fn.name} calls its parameter(s) {sorted(params & called)}"


@pytest.mark.parametrize("folder", ["derive", "runtime"])
def test_hand_written_modules_stay_small(folder):
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_every_package_and_data_file_is_installed():
    """pyproject.toml lists the packages by hand: msat.derive.kernels was missing, so a non-editable install
    (pip install .) had no `msat derive` and no `msat latex --depth` (ImportError), which an editable install,
    the only one the tests use, could not show. Every folder with an __init__.py is a listed package and every
    other tracked file inside one matches its package data."""
    import fnmatch
    import subprocess

    tomllib = pytest.importorskip("tomllib")  # Python 3.11

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, data = set(tool["packages"]), tool.get("package-data", {})
    for pkg, folder in PACKAGES.items():
        for init in folder.rglob("__init__.py"):
            name = ".".join([pkg, *init.parent.relative_to(folder).parts])
            assert name in listed, f"{name} is not in pyproject.toml's packages"
    tracked = subprocess.run(["git", "ls-files", *PACKAGES.values()], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode:  # not a git checkout (an unpacked archive): the files on disk
        files = [p for f in PACKAGES.values() for p in f.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    else:
        files = [ROOT / f for f in tracked.stdout.split()]
    for path in files:
        if path.suffix == ".py":
            continue
        pkg = next(p for p, f in PACKAGES.items() if f in path.parents)
        rel = path.relative_to(PACKAGES[pkg]).as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in data.get(pkg, [])), f"{rel} is not in {pkg}'s package data"
