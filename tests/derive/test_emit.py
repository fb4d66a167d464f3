"""Emission: deterministic bytes, provenance headers, `msat derive --check`, docs freshness."""
import shutil
from pathlib import Path

import pytest

from msat.derive import driver, emit, latex
from msat.runtime.app import console

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fresh():
    return driver.emit(driver.checked_in_order())


def test_checked_in_generated_matches_fresh_emission(fresh):
    assert driver.check(driver.GENERATED_DIR, fresh) == []


def test_headers_carry_provenance_and_content_hash(fresh):
    modules = [name for name in fresh if name.endswith(".py") and name != "__init__.py"]
    assert len(modules) >= 10 and "DO NOT EDIT" in fresh["__init__.py"]
    for name in modules:
        text = fresh[name]
        head, body = emit.split_header(text)
        joined = "".join(head)
        for key in ("DO NOT EDIT", "inputs-sha256:", "content-sha256:", "sympy", "order:"):
            assert key in joined, (name, key)
        assert emit.verify_content(text), name
        edited = text[:-1] + " \n"  # one space more at the end of the body
        assert edited != text and not emit.verify_content(edited), name


def test_derive_check_cli_passes_and_detects_edits(tmp_path, capsys, monkeypatch, fresh):
    """The CLI's check passes on the checked-in files: a second emission in this process, which
    therefore gives the same bytes as the first (`fresh`, equal to the checked-in files above); an
    edited copy of them fails it (compared with `fresh`: the emission itself is tested above)."""
    assert console.main(["derive", "--check"]) == 0
    out = tmp_path / "gen"
    shutil.copytree(driver.GENERATED_DIR, out, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(driver, "emit", lambda *args, **kw: fresh)
    assert console.main(["derive", "--check", "--out", str(out)]) == 0
    f = out / "rescaling_o1.py"
    f.write_text(f.read_text().replace("math.log(", "math.log1p(", 1))
    capsys.readouterr()
    assert console.main(["derive", "--check", "--out", str(out)]) == 1
    out_text, err = capsys.readouterr()
    assert "rescaling_o1.py" in out_text and "differ" in err
    f.write_text(fresh["rescaling_o1.py"])
    (out / "stray.py").write_text("X = 1\n")  # importable as msat.generated.stray, checked by no hash
    assert console.main(["derive", "--check", "--out", str(out)]) == 1
    out_text, err = capsys.readouterr()
    assert "stray.py: not written by msat derive (remove it by hand" in out_text
    # the summary does not send the user to `msat derive`, which keeps the file
    assert "remove the 1 file(s) not written by msat derive by hand" in err and "to update" not in err
    (out / "stray.py").unlink()
    # line endings are bytes too: a copy turned to CRLF (or one line of it) passed, read with universal newlines
    for name, text in (("rescaling_o2.py", fresh["rescaling_o2.py"].replace("\n", "\r\n")),
                       ("lowered.py", fresh["lowered.py"][:-1] + "\r\n")):
        assert console.main(["derive", "--check", "--out", str(out)]) == 0
        (out / name).write_bytes(text.encode())
        capsys.readouterr()
        assert console.main(["derive", "--check", "--out", str(out)]) == 1
        assert name in capsys.readouterr().out
        (out / name).write_bytes(fresh[name].encode())


def test_provenance_hashes_the_generated_code_as_installed(tmp_path):
    """generated_hash covered only the MANIFEST file: a hand-edited module (loop order 1's s_mean moved 4x
    further from exact) kept the published hash. It is now the hash of the MANIFEST and every module's bytes
    (recomputed here with hashlib), and the edited module is named."""
    import hashlib

    from msat.runtime import labelled

    out = tmp_path / "gen"
    shutil.copytree(driver.GENERATED_DIR, out, ignore=shutil.ignore_patterns("__pycache__"))
    names = [ln.split()[0] for ln in (out / "MANIFEST").read_text().splitlines()]
    expect = hashlib.sha256((out / "MANIFEST").read_bytes())
    for n in names:
        expect.update((out / n).read_bytes())
    clean = labelled.provenance(out)
    assert clean["generated_hash"] == expect.hexdigest() == labelled.provenance()["generated_hash"]
    assert clean["generated_edited"] == ""
    f = out / "rescaling_o1.py"
    f.write_text(f.read_text().replace("(1/2)*N", "(1/3)*N", 1))
    edited = labelled.provenance(out)
    assert edited["generated_hash"] != clean["generated_hash"] and edited["generated_edited"] == "rescaling_o1.py"
    f.write_bytes(f.read_bytes().replace(b"(1/3)*N", b"(1/2)*N").replace(b"\n", b"\r\n"))
    assert labelled.provenance(out)["generated_hash"] != clean["generated_hash"]


def test_order_four_emits_and_compiles(tmp_path):
    """Order 4 of the loop expansion, beyond the checked-in orders, emitted and compiled (only its
    module: `msat derive --order 4 --out DIR`, which also emits every other module, runs in the
    docs test of docs/derive.md)."""
    import importlib.util

    import numpy as np

    from msat.derive.kernels import rescaling

    out = tmp_path / "rescaling_o4.py"
    out.write_text(emit.assemble(*rescaling.modules(4)["rescaling_o4"]))
    spec = importlib.util.spec_from_file_location("rescaling_o4_test", out)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.ORDER == 4 and mod.NMAX == 10
    dA = np.array([[0.0, 0.0, 40.0] + [1.0] * 8])
    w = np.empty((1, 5, 9))
    mod.weights_dressed(dA, w)
    assert np.all(np.isfinite(w)) and w[0, 0, 0] == 1.0


def test_docs_formulas_page_is_current():
    page = ROOT / "docs" / "formulas.md"
    assert page.read_text() == latex.document(3), "docs/formulas.md is stale: run `msat latex --markdown --order 3 > docs/formulas.md`"


def test_latex_cli(capsys):
    assert console.main(["latex", "--order", "2", "--observable", "test_mean"]) == 0
    out = capsys.readouterr().out
    assert "c_{2}^{\\mathrm{dressed}}" in out and "m_*" in out
    assert console.main(["latex", "--observable", "nonsense"]) == 2


def test_latex_prints_valid_definitions(capsys):
    """field_s printed s(s) = s c_j (c_j is k**_j, a test point's coefficient); the resolvent's label had _ and ^
    in \\text (a LaTeX error) and Python's "kappa"; SymPy's matrix printer wrote "y + - g_v"."""
    import re

    from msat.derive import latex

    assert latex.observable_lines("field_s") == [r"s(s) = s \qquad \text{(the rescaling field s)}"]
    page = latex.document(2)
    assert "+ -" not in page
    for label in re.findall(r"\\text\{([^{}]*)\}", page):
        assert not re.search(r"[_^\\]|kappa", label), label


@pytest.mark.parametrize("name", ["train_mean", "test_mean", "test_var", "field_s", "resolvent"])
def test_latex_observable_defines_its_coefficients(name, capsys):
    """`msat latex --observable` printed C_{jk} and c_j without saying what they are (only docs/formulas.md did,
    and there C_{jk} means a different array for each observable)."""
    assert console.main(["latex", "--order", "0", "--observable", name]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    used = lines[lines.index("% observable") + 1]
    defs = out.split(used, 1)[1].split("% <O>", 1)[0]
    for symbol in ("C_{jk}", "c_j"):
        assert (symbol in used) == (f"{symbol} = " in defs), (symbol, used, defs)


@pytest.mark.parametrize("argv", [["latex", "--order", "0_1"], ["latex", "--order", "\u0662"],
                                  ["latex", "--depth", "\u0662"], ["derive", "--order", "2_0", "--out", "{tmp}/d"],
                                  ["latex", "--markdown", "--observable", "test_mean"]])
def test_derive_and_latex_take_plain_integers_and_no_ignored_options(argv, tmp_path, capsys):
    """int() took "0_1", "2_0" (then "--order 20 is above 8") and Arabic-Indic digits, which predict refuses;
    --markdown ignored --observable and exited 0."""
    assert console.main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["latex", "--order", "99"], ["derive", "--order", "99"],
                                  ["derive", "--depth", "99", "--out", "{tmp}/d"], ["latex", "--depth", "99"],
                                  ["derive", "--check", "--out", "{tmp}/absent"], ["derive", "--out", "/proc/msat"],
                                  ["derive", "--out", "/proc"], ["derive", "--check", "--out", "{tmp}/empty"]])
def test_derive_and_latex_refuse_at_once(argv, tmp_path, capsys, monkeypatch):
    """An order or a depth whose derivation would take hours, a --check folder that does not exist or holds no
    generated modules (it printed a diff of 4,733 lines and exited 1) and an unwritable --out are refused with
    exit 2 and one line before any symbolic work (each would otherwise run for minutes or hang)."""
    from msat.derive import driver

    def no_emission(*_):
        raise AssertionError("the emission ran before the refusal")

    monkeypatch.setattr(driver, "emit", no_emission)  # an existing folder it cannot write (/proc) emitted first
    (tmp_path / "empty").mkdir()
    assert console.main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_row_quadratic_lowering_equals_its_hadamard_form():
    """RowQuadratic (diag(A S A^T)) prints as a call to the helper row_quadratic (a triangular product by
    blocks of rows, emitted once into generated/lowered.py); against its own doit() form, (A S o A) 1,
    evaluated by NumPy, for a non-symmetric S, a strided column slice, more rows than a block, and empty
    shapes. The tilt is emitted through it."""
    import numpy as np
    import sympy as sp

    from msat import generated
    from msat.derive import deep_chain, matcalc
    from msat.derive.printing import tex

    m, n = sp.symbols("m n", integer=True, positive=True)
    A, S = sp.MatrixSymbol("A", m, n), sp.MatrixSymbol("S", n, n)
    rq = matcalc.RowQuadratic(A, S)
    assert emit.numpy_code(rq) == "row_quadratic(A, S)"
    assert rq.shape == (m, 1)
    reference = emit.numpy_code(rq.doit())  # the Hadamard form, as numpy code
    assert "row_quadratic" not in reference
    mod = generated.blas_helpers()
    rng = np.random.default_rng(3)
    for rows, cols in ((mod.ROW_BLOCK + 37, 30), (5, 1), (0, 4), (3, 0)):
        wide = rng.standard_normal((rows, cols + 7))
        a, s = wide[:, 3:3 + cols], rng.standard_normal((cols, cols))  # a: a strided slice, s not symmetric
        expected = eval(reference, {"numpy": np, "A": a, "S": s, "n": cols})
        np.testing.assert_allclose(mod.row_quadratic(a, s), expected, rtol=1e-12, atol=1e-12)
        assert mod.row_quadratic(a, s).shape == (rows, 1)
    assert isinstance(deep_chain.tilt(), matcalc.RowQuadratic)
    user = generated.deep_linear_adaptation()
    assert user.row_quadratic is mod.row_quadratic  # imported from lowered.py, not emitted a second time
    assert "row_quadratic(Phi, Ct)" in Path(user.__file__).read_text()
    assert "def row_quadratic" not in Path(user.__file__).read_text()
    assert tex(rq) == r"\operatorname{diag}\left(A S A^{T}\right)"


def test_weighted_gram_lowering_equals_its_product_form():
    """WeightedGram (A^T diag(c) A) prints as the helper weighted_gram (syrk updates per block of rows, rows
    of positive and negative weight); against its doit() form A^T (A o c 1^T) evaluated by NumPy, for weights
    of mixed sign, one sign, all zero, a strided slice, no rows, no columns and more rows than a block
    (accumulated block by block). The tilt's Jacobian product and the reweighted moments use it."""
    import numpy as np
    import sympy as sp

    from msat import generated
    from msat.derive import matcalc
    from msat.derive.printing import tex

    m, n = sp.symbols("m n", integer=True, positive=True)
    A, c = sp.MatrixSymbol("A", m, n), sp.MatrixSymbol("c", m, 1)
    wg = matcalc.WeightedGram(A, c)
    assert emit.numpy_code(wg) == "weighted_gram(A, c)" and wg.shape == (n, n)
    assert tex(wg) == r"A^{T} \operatorname{diag}\left(c\right) A"
    reference = emit.numpy_code(wg.doit())
    assert "weighted_gram" not in reference
    mod = generated.blas_helpers()
    rng = np.random.default_rng(4)
    for rows, cols, sign in ((500, 30, None), (40, 7, 1.0), (40, 7, -1.0), (40, 7, 0.0), (0, 5, None),
                             (mod.ROW_BLOCK + 41, 9, None), (40, 0, None)):
        a = rng.standard_normal((rows, cols + 4))[:, 2:2 + cols]
        w = rng.standard_normal(rows) if sign is None else sign * rng.random(rows)
        expected = eval(reference, {"numpy": np, "A": a, "c": w[:, None], "n": cols})
        got = mod.weighted_gram(a, w)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(got, got.T)
    user = generated.nonlinear_adaptation()
    assert user.weighted_gram is mod.weighted_gram
    assert "weighted_gram(F, c)" in Path(user.__file__).read_text()


def test_write_removes_generated_modules_a_smaller_emission_no_longer_holds(tmp_path):
    """`msat derive --order 1` after order 3 left rescaling_o2/o3 behind, and `--check` then failed; files the
    emitter did not write stay."""
    from msat.derive import driver

    (tmp_path / "rescaling_o3.py").write_text("# rescaling_o3\n# Generated by msat.derive.emit -- DO NOT EDIT.\n")
    (tmp_path / "mine.py").write_text("# a user's file\n")
    driver.write(tmp_path, {"rescaling_o1.py": "# new\n"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.py", "rescaling_o1.py"]


def test_an_emission_into_the_package_clears_numba_caches_that_hold_old_callees(tmp_path, monkeypatch):
    """After `msat derive` rewrote generated/, a runtime kernel cached with a compiled copy of an old generated
    callee kept running it (numba's cache checks the caller's own file only; an outside audit's sampler ran an
    edited density unedited). Writing into the package's generated/ now deletes the package's *.nbi/*.nbc; an
    emission elsewhere (--out) leaves every cache alone."""
    root = tmp_path / "pkg"
    for folder in ("generated", "runtime/numerics"):
        (root / folder / "__pycache__").mkdir(parents=True)
        for ext in ("nbi", "nbc", "pyc"):
            (root / folder / "__pycache__" / f"mod.{ext}").write_text("x")
    venv = root / ".venv" / "lib" / "__pycache__"  # another package's caches in the checkout stay
    venv.mkdir(parents=True)
    (venv / "other.nbi").write_text("x")
    monkeypatch.setattr(driver, "GENERATED_DIR", root / "generated")
    driver.write(tmp_path / "elsewhere", {"rescaling_o1.py": "# new\n"})
    assert len(list(root.rglob("*.nb[ic]"))) == 5
    driver.write(root / "generated", {"rescaling_o1.py": "# new\n"})
    assert list(root.rglob("*.nb[ic]")) == [venv / "other.nbi"] and len(list(root.rglob("*.pyc"))) == 2
