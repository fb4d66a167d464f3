"""Every reference resolves inside the repository.

- No tracked file points outside the repository: no path into a sibling folder of the checkout,
  no reference to the internal theory file the project was built from.
- Every section cited as "theory.md §X" exists in docs/theory.md, and every link to
  theory.md#anchor names a heading there (GitHub's anchor rule).
- Every relative link in the Markdown pages points at a file of the repository.
- docs/theory.md covers every method the command line offers.
"""
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THEORY = ROOT / "docs" / "theory.md"
OUTSIDE = ["../" + "shared", "THEORY" + ".md", "THEORY" + " §", "DESIGN" + ".md", "STYLE" + ".md"]  # written in pieces: this file is tracked too
TEXT_SUFFIXES = {".py", ".md", ".j2", ".toml", ".cff", ".txt", ".ipynb", ".cfg", ".yml", ".yaml", ""}


def _tracked():
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        files = [ROOT / f for f in out.split()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file but caches
        files = [p for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts and "__pycache__" not in p.parts]
    # this file holds deliberately broken examples of what the scan must catch
    return [f for f in files if f.suffix in TEXT_SUFFIXES and f.is_file() and f.resolve() != Path(__file__).resolve()]


def _slug(heading):
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _sections():
    secs, anchors = set(), set()
    for line in THEORY.read_text().splitlines():
        m = re.match(r"^(#{1,6}) (.*)$", line)
        if m:
            anchors.add(_slug(m.group(2)))
            s = re.match(r"(\d+[a-z]?)\. ", m.group(2))
            if s:
                secs.add(s.group(1))
    return secs, anchors


def test_nothing_points_outside_the_repository():
    bad = [f"{f.relative_to(ROOT)}: {needle}" for f in _tracked() for needle in OUTSIDE
           if needle in f.read_text(errors="ignore")]
    assert not bad, bad


def _missing(text, secs, anchors):
    """Sections cited as "theory.md §X" and anchors "theory.md#a" that docs/theory.md lacks."""
    out = []
    for m in re.finditer(r"theory\.md[ )]*((?:§\s?\d+[a-z]?(?:,\s*)?)+)", text):
        out += [f"§{s}" for s in re.findall(r"§\s?(\d+[a-z]?)", m.group(1)) if s not in secs]
    out += [f"#{a}" for a in re.findall(r"theory\.md#([\w\-]+)", text) if a not in anchors]
    return out


def test_cited_sections_and_anchors_exist():
    secs, anchors = _sections()
    assert {"1", "2a", "2b", "2c", "3", "4", "5", "6", "7", "8", "9"} <= secs
    missing = [f"{f.relative_to(ROOT)}: {m}" for f in _tracked()
               for m in _missing(f.read_text(errors="ignore"), secs, anchors)]
    assert not missing, missing


def test_the_scan_finds_a_missing_section_and_anchor():
    secs, anchors = _sections()
    text = "see docs/theory.md §2a, §2z and [x](theory.md#2c-the-kernel-fields-own-loop-linear-networks), [y](theory.md#nope)"
    assert _missing(text, secs, anchors) == ["§2z", "#nope"]


def test_relative_links_in_markdown_resolve():
    broken = []
    for f in _tracked():
        if f.suffix != ".md":
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", f.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (f.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{f.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_theory_covers_every_method_of_the_command_line():
    from msat.runtime.app import console

    parser = console.build_parser()
    predict = parser._subparsers._group_actions[0].choices["predict"]
    help_text = next(a.help for a in predict._actions if a.dest == "method")
    methods = re.findall(r"[a-z]+", help_text.replace(" or ", ", "))
    assert set(methods) == {"nngp", "exact", "loop", "adaptive", "sample"}, methods
    body = THEORY.read_text()
    sections = re.split(r"\n(?=##+ \d)", body)[1:]
    for m in methods:
        assert any(f"`{m}`" in s or f"--method {m}" in s for s in sections), m


@pytest.mark.parametrize("name", ["LICENSE", "CITATION.cff", "CHANGELOG.md"])
def test_project_files_exist_and_readme_links_them(name):
    assert (ROOT / name).is_file()
    assert f"]({name})" in (ROOT / "README.md").read_text()
