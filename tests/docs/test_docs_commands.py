"""Every command shown in the docs is exercised by a test.

README.md and docs/*.md (except the generated docs/formulas.md) are scanned for fenced code
blocks tagged ```bash or ```python; those are the runnable blocks (illustrative text, such as
sample output, goes into ```text blocks and is not run). All runnable blocks of one document run
in order in a fresh temporary working directory:

* bash blocks line by line through the shell (a line ending in a backslash continues on the next);
  ``pip install ... && CMD`` runs only CMD, and commands that call pytest are skipped (the docs
  test must not start the test suite it belongs to), as is the README's main job, ``msat run
  --quick``, which tests/app/test_run.py runs (into a temporary --out) and checks in detail;
* python blocks with ``python -c``.

Each command must exit 0, unless the block is preceded by ``<!-- expect-exit: N -->``, in which
case every command of that block must exit N. One test per document.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "formulas.md")
RUNNABLE = ("bash", "python")
EXPECT = re.compile(r"^<!--\s*expect-exit:\s*(\d+)\s*-->$")
FENCE = re.compile(r"^```(\S*)\s*$")
TIMEOUT = 300  # seconds per command; every documented command is meant to take seconds

#: documented commands that another test runs and checks more closely
RUN_ELSEWHERE = {"msat run --quick": "tests/app/test_run.py::quick_run"}

SETUP_COMMANDS = [
    "pip install -e . && msat run --quick",
    'pip install -e ".[test]" && python -m pytest -q -n 2',
]


@dataclass
class Block:
    tag: str
    code: str
    line: int  # 1-based line of the opening fence
    expect: int = 0


def blocks(text: str) -> list[Block]:
    """Fenced code blocks of a Markdown text, with the expected exit code of each."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, tag, body = i, m.group(1), []
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"unclosed code fence at line {start + 1}")
        i += 1
        expect, j = 0, start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (e := EXPECT.match(lines[j].strip())):
            expect = int(e.group(1))
        out.append(Block(tag, "\n".join(body) + "\n", start + 1, expect))
    return out


def shell_commands(code: str) -> list[str]:
    """The commands of a bash block to run: joined continuation lines, no comments or blanks,
    ``pip install ... && CMD`` reduced to CMD, and pytest calls left out."""
    cmds, pending = [], ""
    for raw in code.splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if not line or line.startswith("#"):
            continue
        if line.startswith("pip install"):
            if "&&" not in line:
                continue
            line = line.split("&&", 1)[1].strip()
        if "pytest" in line or line in RUN_ELSEWHERE:
            continue
        cmds.append(line)
    return cmds


def _env() -> dict:
    env = dict(os.environ)
    # the `msat` console script lives next to the interpreter that runs the tests
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["MPLBACKEND"] = "Agg"
    env.pop("MSAT_DEBUG", None)
    return env


def _check(doc: Path, block: Block, what: str, proc: subprocess.CompletedProcess) -> None:
    if proc.returncode != block.expect:
        tail = lambda s: "\n".join(s.splitlines()[-25:])  # noqa: E731
        pytest.fail(
            f"{doc.name}:{block.line}: {what!r} exited {proc.returncode}, expected {block.expect}\n"
            f"--- stdout (tail)\n{tail(proc.stdout)}\n--- stderr (tail)\n{tail(proc.stderr)}",
            pytrace=False,
        )


def test_readme_setup_is_two_commands():
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Set-up\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Set-up' section"
    cmds = [line.strip() for b in blocks(section.group(1)) for line in b.code.splitlines() if line.strip()]
    assert [b.tag for b in blocks(section.group(1))] == ["bash"]
    assert cmds == SETUP_COMMANDS


def test_docs_have_runnable_blocks_with_known_tags():
    for doc in DOCS:
        tags = {b.tag for b in blocks(doc.read_text())}
        assert tags & set(RUNNABLE), f"{doc.name} shows no runnable command"
        unknown = tags - set(RUNNABLE) - {"text", "mermaid"}
        assert not unknown, f"{doc.name}: code blocks tagged {sorted(unknown)}; use bash, python, text or mermaid"


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_documented_commands_run(doc, tmp_path):
    env = _env()
    ran = 0
    for block in blocks(doc.read_text()):
        if block.tag == "bash":
            for cmd in shell_commands(block.code):
                proc = subprocess.run(cmd, shell=True, cwd=tmp_path, env=env, capture_output=True,
                                      text=True, timeout=TIMEOUT, executable="/bin/bash")
                _check(doc, block, cmd, proc)
                ran += 1
        elif block.tag == "python":
            proc = subprocess.run([sys.executable, "-c", block.code], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=TIMEOUT)
            _check(doc, block, f"python block at line {block.line}", proc)
            ran += 1
    assert ran, f"{doc.name}: no command was run"
