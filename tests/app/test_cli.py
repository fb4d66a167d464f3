"""CLI contract of DESIGN.md: JSON keys, ladders, exit codes, one-line errors, no tracebacks."""
import json
import subprocess
import sys

import numpy as np
import pytest

from msat.runtime import data, spectral
from msat.runtime.app import console
from msat.runtime.methods import exact
from msat.runtime import predict

KEYS = {"method", "order", "params", "train_mean", "test_mean", "test_var", "s_mean", "s_var",
        "converged", "seconds", "warnings"}


@pytest.fixture()
def npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 7))
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=np.sign(X[:, 0]), X_test=rng.standard_normal((4, 7)))
    return path


def run(argv, capsys):
    code = console.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


BASE = ["predict", "--N", "50", "--chi", "2", "--kappa", "0.5"]


@pytest.mark.parametrize("method", ["nngp", "exact", "loop"])
def test_predict_json_contract(npz, tmp_path, capsys, method):
    out = tmp_path / "r.json"
    code, _, err = run(BASE + ["--data", npz, "--method", method, "--json", out], capsys)
    assert code == 0, err
    r = json.loads(out.read_text())
    assert KEYS <= set(r)
    assert r["method"] == method and r["converged"] is True
    assert len(r["train_mean"]) == 12 and len(r["test_mean"]) == 4 and len(r["test_var"]) == 4
    assert r["order"] == (1 if method == "loop" else None)
    assert r["params"]["chi"] == 2.0 and r["params"]["N"] == 50


def test_json_to_stdout_and_ladder_order(npz, capsys):
    code, out, err = run(["predict", "--data", npz, "--N", "40", "--chi", "5,1,40", "--kappa", "0.5", "--order", "2"], capsys)
    assert code == 0, err
    rs = json.loads(out)
    assert [r["params"]["chi"] for r in rs] == [5.0, 1.0, 40.0]
    assert all(KEYS <= set(r) for r in rs)


def test_cli_equals_api_and_exact(npz, capsys):
    d = data.load(npz)
    code, out, _ = run(BASE + ["--data", npz, "--method", "exact"], capsys)
    r = json.loads(out)
    api = predict(d.X, d.y, d.X_test, N=50, chi=2, kappa=0.5, method="exact")
    np.testing.assert_array_equal(r["test_mean"], api["test_mean"])
    ex = exact.moments(spectral.spectrum(d.X, d.y, d.X_test, 1.0), 50, 2.0, 0.5, 1.0)
    np.testing.assert_allclose(r["train_mean"], ex["train_mean"], rtol=0, atol=1e-13)


def test_builtin_dataset_and_csv(tmp_path, capsys):
    code, out, err = run(["predict", "--dataset", "ising", "--P", "30", "--D", "20", "--P-test", "5",
                          "--N", "60", "--chi", "60", "--kappa", "0.5", "--method", "loop", "--dressed"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert len(r["train_mean"]) == 30 and len(r["test_var"]) == 5 and r["params"]["dressed"] is True
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,y,split\n1,0,1,train\n0,1,-1,train\n1,1,1,train\n0.5,0.2,,test\n")
    code, out, err = run(["predict", "--data", csv, "--N", "10", "--chi", "1", "--kappa", "0.5"], capsys)
    assert code == 0, err
    assert len(json.loads(out)["test_mean"]) == 1


def test_singular_kernel_p_greater_than_d(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 4))
    path = tmp_path / "pd.npz"
    np.savez(path, X=X, y=np.sign(X[:, 0]), X_test=X[:3])
    for method in ("exact", "loop", "nngp"):
        code, out, err = run(["predict", "--data", path, "--N", "80", "--chi", "1,80", "--kappa", "0.3", "--method", method], capsys)
        assert code == 0, err
        assert all(np.all(np.isfinite(r["train_mean"])) for r in json.loads(out))


def test_chi_outside_range_warns(npz, capsys):
    code, out, err = run(["predict", "--data", npz, "--N", "10", "--chi", "20", "--kappa", "0.5"], capsys)
    assert code == 0
    assert "warning" in err and json.loads(out)["warnings"]


def _bad_files(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3))
    files = {}
    files["missing"] = tmp_path / "nope.npz"
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file at all \x00\x01")
    files["corrupt"] = corrupt
    pick = tmp_path / "pickled.npz"
    np.savez(pick, X=np.array([{"a": 1}] * 6, dtype=object), y=np.ones(6))
    files["pickled"] = pick
    for name, (Xb, yb) in {
        "nan": (np.where(np.eye(6, 3) > 0, np.nan, X), np.ones(6)),
        "inf": (X, np.r_[np.ones(5), np.inf]),
        "shape": (X, np.ones(5)),
        "empty": (np.zeros((0, 3)), np.zeros(0)),
    }.items():
        p = tmp_path / f"{name}.npz"
        np.savez(p, X=Xb, y=yb)
        files[name] = p
    return files


@pytest.mark.parametrize("case", ["missing", "corrupt", "pickled", "nan", "inf", "shape", "empty"])
def test_bad_files_exit_2_one_line(tmp_path, capsys, case):
    path = _bad_files(tmp_path)[case]
    code, out, err = run(BASE + ["--data", path], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("args", [
    ["--kappa", "0"], ["--kappa", "-1"], ["--N", "2.5"], ["--N", "0"], ["--N", "abc"],
    ["--chi", "0"], ["--chi", "-3"], ["--chi", "1,,2"], ["--chi", "nan"], ["--activation", "tanh"],
    ["--order", "-1"], ["--method", "magic"], ["--g-v", "0"],
])
def test_bad_parameters_exit_2_one_line(npz, capsys, args):
    argv = BASE + ["--data", npz]
    for i in range(0, len(args), 2):
        if args[i] in argv:
            argv[argv.index(args[i]) + 1] = args[i + 1]
        else:
            argv += args[i:i + 2]
    code, out, err = run(argv, capsys)
    assert code == 2, (args, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_required_option_exit_2(npz, capsys):
    code, out, err = run(["predict", "--data", npz, "--N", "5", "--kappa", "1"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_console_script_subprocess_no_traceback(tmp_path):
    res = subprocess.run([sys.executable, "-m", "msat.runtime.app.console", "predict", "--data", str(tmp_path / "x.npz"),
                          "--N", "5", "--chi", "1", "--kappa", "1"], capture_output=True, text=True)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_ladder_failure_keeps_earlier_points_and_exits_3(npz, capsys, monkeypatch):
    from msat.runtime import errors
    from msat.runtime.methods import loop as pr

    real = pr.find_saddle

    def flaky(grad, s_init=1.0, **kw):
        if float(grad._chi[0]) == 7.0:
            raise errors.ConvergenceError("saddle: Newton did not converge", {"iterations": 200})
        return real(grad, s_init, **kw)

    monkeypatch.setattr(pr, "find_saddle", flaky)
    code, out, err = run(["predict", "--data", npz, "--N", "40", "--chi", "1,2,7,9", "--kappa", "0.5"], capsys)
    assert code == 3
    rs = json.loads(out)
    assert [r["converged"] for r in rs] == [True, True, False]
    assert rs[2]["chi"] == 7.0 and "error" in rs[2]
    assert "Traceback" not in err and "did not converge" in err
