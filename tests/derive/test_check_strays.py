"""`msat derive --check` against a tampered copy of generated/: the order and depth it compares at come from what the
folder records (MANIFEST, else the registry's header), never from a stray file's name, and everything importable that
the emission does not hold is named. An outside audit: deleting rescaling_o3.py made the check compare at order 2 and
suggest `msat derive --order 2` (a downgrade) without naming the file; an empty rescaling_o8.py started an emission of
hours; a stray subpackage passed.

The emission is the checked-in files (test_emit.py checks that they equal a fresh one), handed to the CLI in place of
driver.emit at the recorded order and depth only: a check asking for any other order fails the test instead of
running for minutes or hours.
"""
import shutil

import pytest

from msat.derive import driver
from msat.runtime.app import console

ORDER, DEPTH = driver.DEFAULT_ORDER, driver.DEFAULT_DEPTH  # what the checked-in MANIFEST records


class OtherEmission(Exception):
    """The check asked for an emission at an order or depth the folder does not record."""


@pytest.fixture(scope="module")
def checked_in():
    gen = driver.GENERATED_DIR
    names = [ln.split()[0] for ln in (gen / "MANIFEST").read_text().splitlines()]
    assert f"rescaling_o{ORDER}.py" in names and f"deep_layers_d{DEPTH}_o{ORDER}.py" in names
    return {name: (gen / name).read_bytes().decode() for name in [*names, "MANIFEST"]}


@pytest.fixture
def check(tmp_path, monkeypatch, capsys, checked_in):
    """A clean copy of generated/ and a function running `msat derive --check --out COPY`: (exit code, stdout,
    stderr, the (order, depth) of every emission asked for)."""
    out = tmp_path / "gen"
    shutil.copytree(driver.GENERATED_DIR, out, ignore=shutil.ignore_patterns("__pycache__"))
    asked = []

    def emit(order=driver.DEFAULT_ORDER, depth=driver.DEFAULT_DEPTH):
        asked.append((order, depth))
        if (order, depth) != (ORDER, DEPTH):
            raise OtherEmission(f"an emission at order {order}, depth {depth}")
        return dict(checked_in)

    monkeypatch.setattr(driver, "emit", emit)

    def run(*extra):
        capsys.readouterr()
        asked.clear()
        code = console.main(["derive", "--check", "--out", str(out), *extra])
        got = capsys.readouterr()
        return code, got.out, got.err, list(asked)

    run.out = out
    assert run()[0] == 0  # the copy passes before it is tampered with
    return run


def test_a_deleted_top_order_module_is_named_and_the_order_kept(check):
    """F1: the order came from the file names left (2), the check listed the order-3 modules as no longer held and
    sent the user to `msat derive --order 2`."""
    (check.out / f"rescaling_o{ORDER}.py").unlink()
    code, out, err, asked = check()
    assert code == 1 and asked == [(ORDER, DEPTH)], (code, asked, err)
    assert f"rescaling_o{ORDER}.py: missing" in out and "no longer holds" not in out
    assert len(err.strip().splitlines()) == 1, err
    assert f"1 file(s) in {check.out} differ" in err and f"rescaling_o{ORDER}.py missing" in err, err
    assert f"msat derive --order {ORDER} --depth {DEPTH} --out {check.out}` to update" in err, err


def test_deleted_modules_of_the_deepest_network_keep_the_depth(check):
    """The depth as F1's order: from the names left it would drop to DEPTH - 1."""
    for order in range(ORDER + 1):
        (check.out / f"deep_layers_d{DEPTH}_o{order}.py").unlink()
    code, _, err, asked = check()
    assert code == 1 and asked == [(ORDER, DEPTH)], (code, asked, err)
    assert f"deep_layers_d{DEPTH}_o0.py missing" in err and f"--depth {DEPTH} --out" in err, err


def test_without_a_manifest_the_registry_gives_the_order(check):
    """No MANIFEST: the registry (__init__.py, the emitter's, unedited) records the order and depth."""
    (check.out / "MANIFEST").unlink()
    (check.out / f"rescaling_o{ORDER}.py").unlink()
    code, out, err, asked = check()
    assert code == 1 and asked == [(ORDER, DEPTH)], (code, asked, err)
    assert "MANIFEST missing" in err and f"rescaling_o{ORDER}.py missing" in err, err


@pytest.mark.parametrize("stray,text", [("rescaling_o8.py", ""), ("rescaling_o5.py", "X = 1\n"),
                                        ("deep_layers_d9_o1.py", ""), ("deep_series_o7.py", "")])
def test_a_stray_module_named_like_a_higher_order_is_named_not_emitted(check, stray, text):
    """F2: an empty generated/rescaling_o8.py started an order-8 emission (hours); a name without the emitter's
    header, not in MANIFEST, is a stray file."""
    (check.out / stray).write_text(text)
    code, out, err, asked = check()
    assert code == 1 and asked == [(ORDER, DEPTH)], (code, asked, err)
    assert f"{stray}: not written by msat derive (remove it by hand" in out
    assert f"{stray} stray" in err and "remove the 1 file(s) not written by msat derive by hand" in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_a_generated_looking_module_the_manifest_does_not_record_is_left_over(check, checked_in):
    """A module with the emitter's header at an order MANIFEST does not record (order 6, say, copied in) is
    compared at the recorded order and named; msat derive at that order removes it."""
    header = "".join(checked_in[f"rescaling_o{ORDER}.py"].splitlines(keepends=True)[:7])
    (check.out / "rescaling_o6.py").write_text(header.replace(f"o{ORDER}", "o6") + "ORDER = 6\n")
    code, out, err, asked = check()
    assert code == 1 and asked == [(ORDER, DEPTH)], (code, asked, err)
    assert "rescaling_o6.py: a module this emission no longer holds" in out
    assert "rescaling_o6.py left over" in err and f"--order {ORDER} --depth {DEPTH}" in err, err


def test_without_any_record_a_file_name_never_raises_the_order_above_the_default(check):
    """No MANIFEST and no registry: the file names, but never above the default order."""
    for name in ("MANIFEST", "__init__.py"):
        (check.out / name).unlink()
    (check.out / "rescaling_o7.py").write_text("")
    code, _, err, asked = check()
    assert code == 1 and asked == [(ORDER, DEPTH)], (code, asked, err)
    assert "rescaling_o7.py stray" in err and "__init__.py missing" in err, err


@pytest.mark.parametrize("make", [
    lambda d: (d / "strayPkg").mkdir() or (d / "strayPkg" / "__init__.py").write_text("print(1)\n"),
    lambda d: (d / "strayPkg" / "sub").mkdir(parents=True) or (d / "strayPkg" / "sub" / "m.py").write_text("X=1\n"),
    lambda d: (d / "strayPkg").mkdir() or (d / "strayPkg" / "fast.cpython-311-x86_64-linux-gnu.so").write_bytes(b""),
    lambda d: (d / "strayPkg.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF"),
    lambda d: (d / "strayPkg.so").write_bytes(b"\x7fELF"),
    lambda d: (d / "strayPkg.pyc").write_bytes(b"\x00" * 16),
], ids=["package", "namespace package", "package of an extension", "extension", "plain .so", "pyc"])
def test_anything_importable_the_emission_does_not_hold_is_stray(check, make):
    """F3: `import msat.generated.strayPkg` would run a subpackage, an extension or a sourceless .pyc that the
    check (top-level *.py only) passed."""
    make(check.out)
    code, out, err, asked = check()
    assert code == 1 and asked == [(ORDER, DEPTH)], (code, err)
    assert f"{check.out}/strayPkg" in out and "not written by msat derive" in out, out
    assert "strayPkg" in err and " stray" in err and "to update" not in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_caches_notes_and_folders_without_code_pass(check):
    """numba's caches under __pycache__ (also a subfolder's), notes and data are nothing Python imports."""
    (check.out / "__pycache__").mkdir()
    (check.out / "__pycache__" / "rescaling_o1.cpython-311.pyc").write_bytes(b"\x00" * 16)
    (check.out / "__pycache__" / "rescaling_o1.kernel-1.py311.nbi").write_bytes(b"x")
    (check.out / "notes.txt").write_text("mine\n")
    (check.out / "data" / "__pycache__").mkdir(parents=True)
    (check.out / "data" / "table.csv").write_text("1,2\n")
    (check.out / "data" / "__pycache__" / "old.cpython-311.pyc").write_bytes(b"\x00" * 16)
    code, out, err, _ = check()
    assert code == 0 and "matches a fresh emission" in out, (out, err)


def test_the_summary_names_the_first_few_on_one_line(check):
    """F4: the stderr line gave a count only."""
    (check.out / f"rescaling_o{ORDER}.py").unlink()
    (check.out / "strayPkg").mkdir()
    (check.out / "strayPkg" / "__init__.py").write_text("print(1)\n")
    for name in ("lowered.py", "nngp.py", "observables.py"):
        (check.out / name).write_text((check.out / name).read_text() + "# edited\n")
    (check.out / "odd\nname.py").write_text("")
    code, _, err, _ = check()
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "6 file(s)" in err and "2 more" in err, err
    assert f"(lowered.py differs, nngp.py differs, observables.py differs, rescaling_o{ORDER}.py missing" in err, err
    assert f"run `msat derive --order {ORDER} --depth {DEPTH} --out {check.out}` to update" in err, err
    assert "remove the 2 file(s) not written by msat derive by hand" in err, err


def test_a_generated_module_missing_at_run_time_is_exit_2_naming_the_remedy(monkeypatch, capsys, tmp_path):
    """An outside audit deleted rescaling_o4.py (MANIFEST still at order 4): an order-3 loop, whose truncation check
    reads order 4, ended in 'internal error' (exit 1), and --order 4 exited 2 with only 'No module named ...'. Here
    the top order's module goes missing."""
    import numpy as np

    from msat import generated
    from msat.runtime.app.console import main

    real = generated.rescaling

    def damaged(order):
        if order == generated.MAX_ORDER:
            name = f"msat.generated.rescaling_o{order}"
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real(order)

    monkeypatch.setattr(generated, "rescaling", damaged)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 3))
    np.savez(tmp_path / "d.npz", X=X, y=X[:, 0], X_test=X[:2])
    top = generated.MAX_ORDER
    for order in (str(top - 1), str(top)):
        code = main(["predict", "--data", str(tmp_path / "d.npz"), "--N", "20", "--chi", "1", "--kappa", "0.5",
                     "--method", "loop", "--order", order])
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert code == 2 and len(err) == 1, (order, code, err)
        assert f"rescaling_o{top}.py" in err[0] and "msat derive --check" in err[0], err


def test_a_damaged_generated_module_is_exit_2_naming_the_remedy(monkeypatch, capsys, tmp_path):
    """A review emptied rescaling_o2.py: 'internal error: AttributeError ... N_ACTION' (exit 1)."""
    import numpy as np

    from msat import generated
    from msat.runtime.app.console import main

    def damaged(order):
        raise AttributeError(f"module 'msat.generated.rescaling_o{order}' has no attribute 'N_ACTION'")

    monkeypatch.setattr(generated, "rescaling", damaged)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 3))
    np.savez(tmp_path / "d.npz", X=X, y=X[:, 0], X_test=X[:2])
    code = main(["predict", "--data", str(tmp_path / "d.npz"), "--N", "20", "--chi", "1", "--kappa", "0.5",
                 "--method", "loop", "--order", "1"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and "damaged" in err[0] and "msat derive --check" in err[0], (code, err)


def test_a_module_missing_where_the_provenance_is_hashed_names_the_remedy(tmp_path):
    """A review deleted a generated module: the first place to meet it, hashing the provenance, exited 2 with the
    generic 'cannot use .../rescaling_o3.py: No such file or directory', not the line naming derive."""
    from pathlib import Path

    from msat import generated
    from msat.runtime.errors import InputError
    from msat.runtime.labelled import provenance

    src = Path(generated.__file__).parent
    copy = tmp_path / "generated"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert provenance(copy)["generated_edited"] == ""
    (copy / "rescaling_o2.py").unlink()
    with pytest.raises(InputError, match=r"lacks rescaling_o2\.py.*msat derive --check"):
        provenance(copy)
