"""The CLI contract (docs/cli.md): JSON keys, ladders, exit codes, one-line errors, no tracebacks."""
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from msat.runtime import data, spectral
from msat.runtime.app import console
from msat.runtime.methods import exact
from msat.runtime import predict
from tests_support import run_cli as run

KEYS = {"method", "order", "params", "train_mean", "test_mean", "test_var", "s_mean", "s_var",
        "converged", "seconds", "warnings"}


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



def test_names_of_choices_ignore_case_as_data_set_names_do(npz, capsys):
    """--method NNGP is --method nngp (as --dataset Ising is ising), on the command line and in the API."""
    d = data.load(npz)
    outs = []
    for method, activation in (("nngp", "linear"), (" NNGP", "Linear")):
        code, out, err = run(BASE + ["--data", npz, "--method", method, "--activation", activation], capsys)
        assert code == 0, err
        outs.append(json.loads(out))
    assert outs[1]["method"] == "nngp" and outs[1]["params"]["activation"] == "linear"
    assert outs[0]["test_mean"] == outs[1]["test_mean"]
    api = predict(d.X, d.y, d.X_test, N=50, chi=2, kappa=0.5, method="Exact", activation="LINEAR")
    assert api.method == "exact"
    code, _, err = run(BASE + ["--data", npz, "--method", "nngpx"], capsys)
    assert code == 2 and "unknown method 'nngpx'" in err

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


def test_params_name_the_data_so_that_a_result_can_be_reproduced(tmp_path, capsys):
    # the built-in set's name and seed in params regenerate the data the CLI fitted: the API on them agrees
    code, out, err = run(["predict", "--dataset", "Teacher", "--P", "16", "--D", "6", "--P-test", "3", "--seed", "5",
                          "--N", "40", "--chi", "1,4", "--kappa", "0.3"], capsys)
    assert code == 0, err
    rs = json.loads(out)
    p = rs[1]["params"]
    assert (p["dataset"], p["seed"]) == ("teacher", 5)
    ds = data.builtin(p["dataset"], P=p["P"], D=p["D"], P_test=p["P_test"], seed=p["seed"])
    api = predict(ds.X, ds.y, ds.X_test, N=p["N"], chi=p["chi"], kappa=p["kappa"])
    assert np.allclose(rs[1]["test_mean"], api.test_mean, rtol=1e-12, atol=1e-14)
    other = data.builtin("teacher", P=16, D=6, P_test=3, seed=6)
    assert not np.allclose(other.X, ds.X)  # the seed is the data's, not a label
    csv = tmp_path / "d.csv"
    csv.write_text("a,t\n1,1\n0,-1\n2,1\n")
    code, out, err = run(["predict", "--data", csv, "--target", "t", "--N", "10", "--chi", "1", "--kappa", "0.5"],
                         capsys)
    assert code == 0, err
    r = json.loads(out)
    p = r["params"]
    assert p["data"] == str(csv) and p["target"] == "t" and "dataset" not in p
    # which bytes and which code: the file's SHA-256, and msat's version and generated code's hash as installed
    import hashlib

    from msat.runtime import labelled

    assert p["data_sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert r["provenance"] == labelled.provenance() and r["provenance"]["generated_edited"] == ""


def test_singular_kernel_p_greater_than_d(tmp_path, capsys):
    """P = 50 > D = 4 (K has rank 4): the exact method equals an independent dense quadrature, the
    NNGP the dense GP predictor, and the loop series converges to the exact answer order by order."""
    from tests_support import dense_exact

    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 4))
    y = np.sign(X[:, 0])
    path = tmp_path / "pd.npz"
    np.savez(path, X=X, y=y, X_test=X[:3])
    K = X @ X.T / 4
    results = {}
    for key, extra in (("exact", ["--method", "exact"]), ("nngp", ["--method", "nngp"]),
                       ("loop", ["--method", "loop"]), ("loop3", ["--method", "loop", "--order", "3", "--dressed"])):
        code, out, err = run(["predict", "--data", path, "--N", "80", "--chi", "1,80", "--kappa", "0.3"] + extra,
                             capsys)
        assert code == 0, err
        results[key] = json.loads(out)
    for j, chi in enumerate((1.0, 80.0)):
        m, mstar, s_mean = dense_exact(X, y, X[:3], 80, chi, 0.3)
        ex = results["exact"][j]
        np.testing.assert_allclose(ex["train_mean"], m, atol=1e-11)
        np.testing.assert_allclose(ex["test_mean"], mstar, atol=1e-11)
        assert ex["s_mean"] == pytest.approx(s_mean, rel=1e-10)
        np.testing.assert_allclose(results["nngp"][j]["train_mean"], K @ np.linalg.solve(K + 0.3 * np.eye(50), y),
                                   atol=1e-10)
        errs = [np.max(np.abs(np.array(results[k][j]["train_mean"]) - m)) for k in ("nngp", "loop", "loop3")]
        assert errs[0] > 5 * errs[1] and errs[1] > 100 * errs[2], errs


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


FLAG_VALUES = {
    "--N": ["10", "0", "-3", "2.5", "1e30", "nan", "abc", "9007199254740993"],
    "--chi": ["1", "1,3,10", "0", "-1", "nan", "inf", "1,,2", "1e-300", "1e300", "x"],
    "--kappa": ["0.5", "0", "-1", "1e-300", "1e300", "inf", "nan", "k"],
    "--g-v": ["1", "0", "1e200", "-2", "nan"],
    "--g-w": ["1", "1e-200", "3", "inf"],
    "--method": ["nngp", "exact", "loop", "adaptive", "magic", ""],
    "--order": ["0", "1", "2", "3", "7", "-1", "1.5", "two"],
    "--activation": ["linear", "erf", "relu", "tanh"],
    "--P": ["6", "0", "-1", "2.5", "100000000000"],
    "--D": ["3", "0", "1", "20000000000"],
    "--P-test": ["2", "0", "-1"],
    "--seed": ["0", "-1", "1.5", "x"],
    "--estimator": ["auto", "cumulant", "mc", "bad"],
    "--mc-samples": ["200", "0", "-5"],
}


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(sorted(FLAG_VALUES)), max_size=5, unique=True).flatmap(
    lambda flags: st.tuples(*[st.tuples(st.just(f), st.sampled_from(FLAG_VALUES[f])) for f in flags])))
def test_any_command_line_exits_0_2_or_3_without_a_traceback(capsys, pairs):
    """Malformed values anywhere: exit 2 with one line, or a solver failure (3), or results."""
    args = {"--dataset": "teacher", "--P": "6", "--D": "3", "--P-test": "2", "--N": "10", "--chi": "1",
            "--kappa": "0.5", "--mc-samples": "400"}
    args.update(dict(pairs))
    argv = ["predict"] + [x for kv in args.items() for x in kv]
    code = console.main(argv)
    _, err = capsys.readouterr()
    assert code in (0, 2, 3), (argv, err)
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, (argv, err)


def test_sample_with_too_few_draws_is_a_usage_error(npz, capsys):
    """ArviZ's ESS and Monte Carlo errors need four draws per chain: fewer would write NaN errors."""
    code, _, err = run(["sample", "--data", npz, "--N", "5", "--chi", "1", "--kappa", "0.1", "--samples", "3"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "samples" in err


def test_one_chain_writes_standard_json_and_says_why_rhat_is_null(npz, tmp_path):
    """One chain has no R-hat: the JSON says null (standard JSON, no NaN) and stderr says why, in msat's words only
    (ArviZ's own shape warnings go through its logger, which capsys would not see: a real process)."""
    out = tmp_path / "s.json"
    res = subprocess.run([sys.executable, "-m", "msat.runtime.app.console", "sample", "--data", str(npz), "--N", "5",
                          "--chi", "1", "--kappa", "0.1", "--samples", "10", "--chains", "1", "--json", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    r = json.loads(text)
    assert r["rhat_max"] is None and all(np.isfinite(r["test_mean_mcse"]))
    lines = res.stderr.strip().splitlines()
    assert all(line.startswith("msat: warning:") for line in lines), lines
    assert any("R-hat needs at least two chains" in line for line in lines)


def test_outputs_that_never_move_say_why_rhat_is_null():
    """With X = 0 every output is 0 in every draw: two chains, yet R-hat is undefined (null) and nothing said why."""
    from msat.runtime import sample

    r = sample(np.zeros((8, 3)), np.linspace(-1, 1, 8), np.zeros((2, 3)), N=10, chi=1.0, kappa=0.5,
                           samples=20, chains=2)
    assert r.extra["rhat_max"] != r.extra["rhat_max"] and np.all(np.asarray(r.train_mean) == 0)
    assert any("no output varies over the draws" in w for w in r.warnings), r.warnings
    assert not any("ESS" in w for w in r.warnings), r.warnings  # constant outputs call for no more draws


@pytest.mark.parametrize("out", ["draws.txt", "absent/draws.npz"])
def test_sample_output_paths_are_checked_before_sampling(npz, tmp_path, capsys, monkeypatch, out):
    """A --draws file that is neither .npz nor .nc, or whose folder does not exist, is refused before any draw."""
    monkeypatch.setattr(sys.modules["msat.runtime.predict"], "predict",
                        lambda *a, **k: pytest.fail("sampled before checking the output path"))
    code, _, err = run(["sample", "--data", npz, "--N", "5", "--chi", "1", "--kappa", "0.1", "--samples", "10",
                        "--draws", tmp_path / out], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err


def test_an_option_the_method_does_not_use_is_named_in_its_warnings(npz):
    d = data.load(npz)
    kw = dict(N=20, chi=1.0, kappa=0.5, dressed=True)
    assert any("--dressed" in w for w in predict(d.X, d.y, d.X_test, method="nngp", **kw)["warnings"])
    assert not any("--dressed" in w for w in predict(d.X, d.y, d.X_test, method="loop", **kw)["warnings"])
    r = predict(d.X, d.y, d.X_test, N=20, chi=1.0, kappa=0.5, method="loop", estimator="mc")
    assert any("--estimator" in w for w in r["warnings"])


@pytest.mark.parametrize("extra", [["--P", "5"], ["--target", "label"]])
def test_data_options_a_file_does_not_use_are_refused(npz, capsys, extra):
    code, _, err = run(BASE + ["--data", npz] + extra, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err


def test_target_with_a_builtin_set_is_refused(capsys):
    code, _, err = run(BASE + ["--dataset", "teacher", "--P", "8", "--D", "3", "--target", "y"], capsys)
    assert code == 2 and "--target" in err


def test_json_to_stdout_with_a_table_keeps_stdout_one_json_document(npz, capsys):
    code, out, err = run(BASE + ["--data", npz, "--json", "-", "--table"], capsys)
    assert code == 0 and KEYS <= set(json.loads(out)) and "msat predict" in err


def test_json_to_a_file_named_dash_is_a_file(npz, capsys, tmp_path, monkeypatch):
    """'-' alone is stdout; './-' is a file of that name (it went to stdout: Path('./-') prints as '-')."""
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(BASE + ["--data", npz, "--json", "./-"], capsys)
    assert code == 0 and KEYS <= set(json.loads((tmp_path / "-").read_text()))
    assert not out.lstrip().startswith("{")


def test_a_ladders_warnings_reach_stderr_once_each(capsys):
    """A warning every point of a ladder carries is printed once; one that only some carry names their chi."""
    from types import SimpleNamespace

    from msat.runtime.app.cli import print_warnings

    every, some = "order 2 by default", "chi is outside [1, N]"
    print_warnings([SimpleNamespace(chi=c, warnings=[every] + ([some] if c > 100 else [])) for c in (1.0, 12.6, 160.0)])
    assert capsys.readouterr().err.splitlines() == [f"msat: warning: {every}", f"msat: warning: chi = 160: {some}"]
    print_warnings([SimpleNamespace(chi=2.0, warnings=[some, some])])
    assert capsys.readouterr().err.splitlines() == [f"msat: warning: {some}"]


def test_options_a_method_does_not_use_are_named_in_warnings(npz, capsys):
    """--order with nngp or exact changes nothing, so the result says it was ignored (as for --dressed);
    `msat sample` without --order says nothing about it; the Monte Carlo draws asked for are in params."""
    for method in ("nngp", "exact"):
        code, out, err = run(BASE + ["--data", npz, "--method", method, "--order", "2"], capsys)
        assert code == 0, err
        r = json.loads(out)
        assert r["order"] is None and any(w.startswith("--order applies to") for w in r["warnings"])
    code, out, err = run(["sample", "--data", npz, "--N", "5", "--chi", "1", "--kappa", "0.1", "--samples", "400",
                          "--chains", "2"], capsys)
    assert code == 0, err
    assert not any("--order" in w for w in json.loads(out)["warnings"])
    # msat sample takes predict --method sample's options (the contract: "the same options"), with the same words
    common = ["--data", npz, "--N", "5", "--chi", "1", "--kappa", "0.1", "--samples", "100", "--chains", "2",
              "--order", "2", "--json", "-"]
    code, out, err = run(["sample", "--method", "sample", *common], capsys)
    code_p, out_p, _ = run(["predict", "--method", "sample", *common], capsys)
    assert code == code_p == 0, err
    assert json.loads(out)["test_mean"] == json.loads(out_p)["test_mean"]
    assert any(w.startswith("--order applies to") for w in json.loads(out)["warnings"])
    code, _, err = run(["sample", "--method", "exact", *common], capsys)
    assert code == 2 and "use msat predict" in err and len(err.strip().splitlines()) == 1, err
    code, out, err = run(BASE + ["--data", npz, "--activation", "erf", "--order", "1", "--estimator", "cumulant",
                                 "--mc-samples", "3000"], capsys)
    assert code == 0, err
    assert json.loads(out)["params"]["mc_samples"] == 3000


def test_a_builtin_set_is_made_only_for_a_request_that_fits(capsys, monkeypatch):
    """The request (memory included) is checked before its built-in data set is generated: refused with exit 2 and
    one line, the generator never called (was: the set made first, about 1 GB at P = 10^6, D = 100)."""
    monkeypatch.setattr(data, "builtin", lambda *a, **k: pytest.fail("data made before the check"))
    code, _, err = run(["predict", "--dataset", "teacher", "--P", "1000000", "--D", "100", "--P-test", "3", "--N", "10",
                        "--chi", "1", "--kappa", "0.1", "--activation", "erf", "--order", "1"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "memory" in err


def test_outputs_that_cannot_be_written_are_refused_before_work(npz, tmp_path, capsys):
    """--json naming a folder and --nc without .nc are refused with exit 2 before any computation; a full
    stdout is a one-line exit 2, not an internal error."""
    folder = tmp_path / "a_folder"
    folder.mkdir()
    a_file = tmp_path / "a_file.csv"
    a_file.write_text("x\n")
    for extra, says in ((["--json", folder], "is a folder"), (["--nc", tmp_path / "r.txt"], ".nc"),
                        (["--json", a_file / "r.json"], "a_file.csv is a file")):
        code, _, err = run(BASE + ["--data", npz, "--method", "nngp", *extra], capsys)
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "msat.runtime.app.console", *map(str, BASE), "--data", str(npz),
                              "--method", "nngp"], stdout=full, stderr=subprocess.PIPE, text=True)
    assert res.returncode == 2 and "standard output" in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_version_is_the_projects(capsys):
    """`msat --version` said "required: command"; it prints the version pyproject.toml declares."""
    import pathlib
    import tomllib

    declared = tomllib.loads((pathlib.Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as done:
        console.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"msat {declared}"


def _cli(npz, *extra, chi="2", **popen):
    return subprocess.run([sys.executable, "-m", "msat.runtime.app.console", "predict", "--N", "50", "--chi", chi,
                           "--kappa", "0.5", "--data", str(npz), "--method", "exact", *map(str, extra)], text=True,
                          **popen)


def test_a_table_that_cannot_be_shown_costs_neither_the_files_nor_the_exit_code(npz, tmp_path):
    """With --json FILE the table goes to stdout; a full stdout made it an internal error (exit 1) and the --nc
    file was never written. The table repeats the JSON: the files are written, a warning says why there is no
    table, exit 0. Where the table is all that was asked for (--table), that is bad output (exit 2, one line)."""
    js, nc = tmp_path / "r.json", tmp_path / "r.nc"
    with open("/dev/full", "w") as full:
        res = _cli(npz, "--json", js, "--nc", nc, stdout=full, stderr=subprocess.PIPE)
        alone = _cli(npz, "--table", stdout=full, stderr=subprocess.PIPE)
    assert res.returncode == 0 and js.exists() and nc.exists() and "table was not shown" in res.stderr, res.stderr
    assert json.loads(js.read_text())["method"] == "exact"
    assert alone.returncode == 2 and len(alone.stderr.strip().splitlines()) == 1, alone.stderr
    assert "standard output" in alone.stderr and "internal error" not in alone.stderr


def test_a_json_write_that_fails_leaves_the_file_as_it_was(npz, tmp_path):
    """A write cut short (a file-size limit, a full disk) left 1024 bytes of invalid JSON where the last good
    results had been; the text now replaces the file only once it is written whole."""
    import resource

    js = tmp_path / "keep.json"
    js.write_text('{"kept": true}\n')

    def limit():  # 1 KiB: the results do not fit (Python ignores SIGXFSZ, so the write fails with EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    res = _cli(npz, "--json", js, chi="2,3", capture_output=True, preexec_fn=limit)
    assert res.returncode == 2 and "cannot write" in res.stderr, res.stderr
    assert json.loads(js.read_text()) == {"kept": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["keep.json", npz.name])  # no temporary left


def test_a_closed_stderr_neither_loses_the_results_nor_puts_errors_on_stdout(npz):
    """`2>&-` (sys.stderr None): the progress check raised AttributeError, whose 'internal error' line went to
    stdout in place of the JSON; now stdout holds the JSON alone, warnings (chi outside [1, N]) dropped."""
    import os

    res = _cli(npz, "--json", "-", chi="500", stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2))
    assert res.returncode == 0 and json.loads(res.stdout)["method"] == "exact", res.stdout


def test_results_written_through_a_symlink_replace_the_file_it_names(npz, tmp_path, capsys):
    """The JSON goes to a temporary file that then replaces the target: through a symlink that is the file the
    link names (the link stays), as writing in place did."""
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("{}\n")
    link.symlink_to(real)
    code, _, err = run(BASE + ["--data", npz, "--method", "nngp", "--json", link], capsys)
    assert code == 0 and link.is_symlink() and json.loads(real.read_text())["method"] == "nngp", err
