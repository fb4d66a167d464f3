"""Inputs an outside audit fed msat (docs/cli.md's contract): each case here once exited with the wrong code,
lost finished results, named a command that refuses, or reported a value that was not typed."""
import json

import numpy as np
import pytest
import xarray as xr

from msat.runtime import grid, predict
from msat.runtime.errors import InputError
from tests_support import run_cli as run


BASE = ["predict", "--N", "30", "--kappa", "0.5", "--method", "nngp"]


def test_any_positive_chi_reaches_the_labelled_file_and_the_sweep(npz, tmp_path, capsys):
    """--nc checked chi against the other parameters' range after the work (exit 2, the JSON never written), and
    a sweep refused chi = 1e-300 as bad input: chi may be any positive number."""
    nc, js = tmp_path / "r.nc", tmp_path / "r.json"
    code, _, err = run(BASE + ["--data", npz, "--chi", "1e-300,1", "--nc", nc, "--json", js], capsys)
    assert code == 0, err
    assert list(xr.open_dataset(nc)["chi"].values) == [1e-300, 1.0] and len(json.loads(js.read_text())) == 2
    assert grid.build(N="20", chi="1e-300,1e300,N", kappa="1").chi_values(20) == [1e-300, 1e300, 20.0]


def test_a_labelled_file_of_a_ladder_with_repeats_is_refused_before_work(npz, tmp_path, capsys, monkeypatch):
    from msat.runtime.app import cli

    monkeypatch.setattr(cli, "_load_data", lambda *a, **k: pytest.fail("work started"))
    code, _, err = run(BASE + ["--data", npz, "--chi", "1,2,2", "--nc", tmp_path / "r.nc"], capsys)
    assert code == 2 and "distinct chi values" in err and len(err.strip().splitlines()) == 1, err


def test_an_output_over_the_data_or_over_another_output_is_refused(npz, tmp_path, capsys):
    before = npz.read_bytes()
    code, _, err = run(BASE + ["--data", npz, "--chi", "1", "--json", npz], capsys)
    assert code == 2 and "is the file of --data" in err and npz.read_bytes() == before, err
    same = tmp_path / "same.npz"
    code, _, err = run(["sample", "--data", npz, "--N", "30", "--chi", "1", "--kappa", "0.5", "--samples", "20",
                        "--json", same, "--draws", same], capsys)
    assert code == 2 and "is the file of --json" in err and not same.exists(), err
    link = tmp_path / "link.npz"  # a hard link is the data file under another name: it was overwritten
    link.hardlink_to(npz)
    code, _, err = run(BASE + ["--data", npz, "--chi", "1", "--json", link], capsys)
    assert code == 2 and "is the file of --data" in err and npz.read_bytes() == before, err


def test_data_without_test_points_reach_the_labelled_file_and_the_sweep(tmp_path, capsys):
    """An .npz without X_test (or a built-in set with --P-test 0) ran with predict, but --nc exited 2 after the
    work ('P_test must be an integer >= 1') and a sweep refused it: both now hold its training means."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 4))
    data = tmp_path / "train_only.npz"
    np.savez(data, X=X, y=np.sign(X[:, 0]))
    nc, store = tmp_path / "r.nc", tmp_path / "s.zarr"
    code, _, err = run(["predict", "--data", data, "--N", "5", "--chi", "1,5", "--kappa", "0.5", "--method", "exact",
                        "--nc", nc], capsys)
    assert code == 0, err
    ref = predict(X, np.sign(X[:, 0]), N=5, chi=[1.0, 5.0], kappa=0.5, method="exact")
    got = xr.open_dataset(nc)
    assert got.sizes["test_point"] == 0
    np.testing.assert_allclose(got["train_mean"].values.reshape(2, -1), [r.train_mean for r in ref], rtol=0, atol=0)
    code, _, err = run(["sweep", "--data", data, "--N", "5", "--chi", "1,5", "--kappa", "0.5", "--method", "exact",
                        "--workers", "1", "--out", store], capsys)
    assert code == 0, err
    np.testing.assert_allclose(xr.open_zarr(store)["train_mean"].values.reshape(2, -1), [r.train_mean for r in ref],
                               rtol=1e-12, atol=1e-12)
    assert grid.build(N="5", chi="1", kappa="1", P="8", D="3", P_test="0,2").coords["P_test"] == [0, 2]


def test_a_number_below_float64s_range_is_named_as_typed(npz, capsys):
    """'--kappa 1e-400' was refused as 'got 0.0', which is not what was typed."""
    for flag, argv in (("--kappa", ["--chi", "1", "--kappa", "1e-400"]), ("--chi", ["--chi", "1e-400"]),
                       ("--g-v", ["--chi", "1", "--g-v", "1e-400"])):
        base = BASE if flag != "--kappa" else [a for a in BASE if a not in ("--kappa", "0.5")]  # each flag once
        code, _, err = run(base + ["--data", npz] + argv, capsys)
        assert code == 2 and "1e-400 is below the smallest float64 number" in err, (flag, err)
    with pytest.raises(InputError, match="below the smallest float64"):
        grid.build(N="20", chi="1", kappa="1e-400")


def test_a_number_beyond_float64s_range_is_named_as_typed(npz, capsys):
    """'--chi 1e400' was refused as 'got inf', which is not what was typed; 'inf' itself is named as inf."""
    for typed, said in (("1e400", "chi 1e400 is beyond float64's range"), ("-1e400", "chi -1e400 is beyond"),
                        ("inf", "got inf")):
        code, _, err = run(BASE + ["--data", npz, f"--chi={typed}"], capsys)
        assert code == 2 and said in err and len(err.strip().splitlines()) == 1, (typed, err)
    with pytest.raises(InputError, match="1e999 is beyond float64's range"):
        grid.build(N="20", chi="1", kappa="1e999")


def test_too_few_monte_carlo_draws_are_refused_not_raised_silently(npz, capsys):
    """--mc-samples 1 crashed the cumulant estimator (a NumPy warning and 'numerical failure') and was raised
    to 2000 draws by the single-neuron Monte Carlo while params said 1."""
    for est in ("cumulant", "mc"):
        code, _, err = run(["predict", "--data", npz, "--N", "30", "--chi", "2", "--kappa", "0.5", "--activation",
                            "erf", "--order", "1", "--estimator", est, "--mc-samples", "1"], capsys)
        assert code == 2 and "mc_samples must be an integer >= 2000" in err and len(err.strip().splitlines()) == 1
    # the deep chain takes eight sets of at least 100: 64 ran 800 draws while params said 64 (an outside audit)
    X = np.random.default_rng(1).standard_normal((6, 3))
    with pytest.raises(InputError, match="mc_samples must be an integer >= 800"):
        predict(X, np.sign(X[:, 0]), N=10, depth=2, chi=1, kappa=0.5, activation="erf", mc_samples=64)
    r = predict(X, np.sign(X[:, 0]), N=10, depth=2, chi=1, kappa=0.5, activation="erf", mc_samples=800)
    assert r.params["mc_samples"] == 800


def test_orders_and_depths_not_generated_name_a_command_that_emits_them(npz, capsys):
    import msat.generated as gen

    # the command keeps every order and depth already generated (its --order and --depth are the highest it emits)
    for extra, says in ((["--order", "5"], f"run `msat derive --order 5 --depth {gen.MAX_DEPTH}`"),
                        (["--order", str(gen.DERIVABLE_ORDER + 1)], "msat derive emits orders up to"),
                        (["--depth", str(gen.MAX_DEPTH + 1), "--order", "1"],
                         f"run `msat derive --order {gen.MAX_ORDER} --depth {gen.MAX_DEPTH + 1}`"),
                        (["--depth", str(gen.DERIVABLE_DEPTH + 1)], "msat derive emits orders up to"),
                        (["--order", "1e300"], "order must be below 2**53")):
        code, _, err = run(["predict", "--data", npz, "--N", "30", "--chi", "1", "--kappa", "0.5", "--method", "loop",
                            *extra], capsys)
        assert code == 2 and says in err and len(err) < 300, (extra, err)


def test_the_api_keeps_the_shape_it_is_given():
    X = np.random.default_rng(2).standard_normal((6, 3))
    y = np.sign(X[:, 0])
    one = predict(X, y, N=10, chi=np.array(2.0), kappa=0.5, method="nngp")
    assert not isinstance(one, list) and one.chi == 2.0
    for bad in (dict(chi=[[1, 2]]), dict(chi=1, N=None, widths=[[20, 30]])):
        with pytest.raises(InputError, match="flat list"):
            predict(X, y, **{"N": 10, "kappa": 0.5, "method": "nngp", **bad})


def test_data_files_an_audit_found_accepted_or_misread(tmp_path, capsys):
    spaced = tmp_path / "spaced.csv"  # quoted names after ', ' (as some writers quote every field)
    spaced.write_text('"x1", "x2", "y"\n1, 2, 0.5\n3, 4, -0.5\n0, 1, 0.1\n')
    code, out, err = run(BASE + ["--data", spaced, "--chi", "1"], capsys)
    assert code == 0 and json.loads(out)["params"]["P"] == 3, err
    code, _, err = run(BASE + ["--data", spaced, "--chi", "1", "--target", ""], capsys)
    assert code == 2 and "target column name must be a non-empty string" in err, err
    wide = tmp_path / "wide.npz"
    np.savez(wide, X=np.ones((4, 2)), y=np.ones(4), X_test=np.zeros((0, 5)))
    code, _, err = run(BASE + ["--data", wide, "--chi", "1"], capsys)
    assert code == 2 and "X_test has 5 columns but X has D = 2" in err, err
    np.savez(wide, X=np.eye(4)[:, :2], y=np.ones(4), X_test=np.zeros((0, 2)))
    assert run(BASE + ["--data", wide, "--chi", "1"], capsys)[0] == 0


def test_a_sweep_onto_a_file_says_it_is_a_file(tmp_path, capsys):
    a_file = tmp_path / "table.csv"
    a_file.write_text("a\n1\n")
    code, _, err = run(["sweep", "--dataset", "teacher", "--P", "8", "--D", "3", "--N", "20", "--chi", "1",
                        "--kappa", "1", "--method", "nngp", "--workers", "1", "--out", a_file], capsys)
    assert code == 2 and "is a file, not a sweep's store" in err and len(err.strip().splitlines()) == 1, err


def test_run_reads_an_integral_depth_as_predict_does(tmp_path, monkeypatch):
    """`msat run --depth 2.0` was refused ('got 2.0') while predict reads it as 2."""
    from msat.runtime.app import run as main_job

    with pytest.raises(InputError, match="positive integer"):
        main_job.run(tmp_path, quick=True, depth=2.5)

    class Reached(Exception):
        pass

    def compute(cfg, activation, progress, depth):
        raise Reached(depth)

    monkeypatch.setattr(main_job, "compute", compute)
    with pytest.raises(Reached) as got:
        main_job.run(tmp_path / "r", quick=True, depth=2.0)
    assert got.value.args[0] == 2 and isinstance(got.value.args[0], int)


def test_a_loop_series_outside_its_range_is_a_failed_point_not_a_result(capsys):
    """N = 2 at P = 12: the truncated series gave s_mean = -0.91 (order 1) and s_var = -1.52 (order 2) as
    converged results; exact gives s_mean 0.34, s_var 0.078."""
    base = ["predict", "--dataset", "teacher", "--P", "12", "--D", "6", "--P-test", "4", "--N", "2", "--chi", "1,2",
            "--kappa", "0.01", "--method", "loop"]
    for order, says in (("1", "s_mean = -0.912 <= 0"), ("2", "s_var = ")):
        code, out, err = run(base + ["--order", order], capsys)
        assert code == 3 and says in err and "--method exact" in err, err
        assert json.loads(out)[0]["converged"] is False
    code, out, _ = run(base[:-1] + ["exact"], capsys)
    assert code == 0 and all(r["s_mean"] > 0 and r["s_var"] > 0 for r in json.loads(out))


def test_labelled_files_say_which_order_ran_and_why_a_point_failed(npz, tmp_path, capsys):
    """A sweep labels adaptive as asked and runs the order the data call for (2 for a small erf field): the
    variable `order` says which; predict --nc kept no failure note where a sweep's store keeps one."""
    nc = tmp_path / "o.nc"
    code, out, err = run(["predict", "--data", npz, "--N", "40", "--chi", "1", "--kappa", "0.5", "--activation",
                          "erf", "--mc-samples", "2000", "--nc", nc], capsys)
    st = xr.open_dataset(nc)
    assert code == 0 and json.loads(out)["order"] == 2, err
    assert str(st["method"].values[0]) == "adaptive" and float(st["order"].values.ravel()[0]) == 2.0
    failed = tmp_path / "f.nc"
    code, _, _ = run(["predict", "--dataset", "teacher", "--P", "12", "--D", "6", "--P-test", "4", "--N", "2",
                      "--chi", "1,2", "--kappa", "0.01", "--method", "loop", "--nc", failed], capsys)
    assert code == 3 and "chi = 1: the loop series" in str(xr.open_dataset(failed)["note"].values.ravel()[0])
    g = grid.build(N="20", chi="1", kappa="1", activation="erf", P="8", D="3", P_test="2")
    assert g.coords["method"] == ["adaptive"]  # predict's default for erf (was loop:1, which erf has not)


def test_a_ladder_that_stops_early_fills_the_store_along_every_chi():
    """A failed first point ends the ladder: the task's arrays still run along the whole chi coordinate (the
    store broadcast the one point's chi_value to both; predict --nc failed with 'cannot reshape')."""
    from msat.runtime import sweep

    g = grid.build(N="2", chi="1,2", kappa="0.01", method="loop", P="12", D="6", P_test="4")
    (_, task), = g.tasks()
    out, note, fail = sweep.run_task(g, task, ("builtin", "teacher"), {})
    assert fail is None and note.startswith("chi = 1: the loop series")
    assert list(out["chi_value"]) == [1.0, 2.0] and not out["converged"].any() and np.isnan(out["seconds"][1])


def test_every_predict_option_of_a_sweep_takes_a_list():
    """--estimator, --mc-samples, --samples, --chains and --readout were single values (`--samples 10,20` was
    'invalid int value'); each is now a dimension, 0 where not given (the method's default), and a task with
    them equals the predict call with them."""
    from msat.runtime import data, sweep

    g = grid.build(N="12", chi="1,2", kappa="0.5", method="sample", activation="erf", samples="20,40", chains="2",
                   estimator="cumulant,mc", readout="sampled,marginal", P="6", D="3", P_test="2")
    assert (g.coords["samples"], g.coords["chains"], g.coords["mc_samples"]) == ([20, 40], [2], [0])
    assert g.coords["estimator"] == ["cumulant", "mc"] and g.coords["readout"] == ["sampled", "marginal"]
    assert list(grid.DIMS).index("readout") < list(grid.DIMS).index("chi")
    (_, task), = [(i, t) for i, t in g.tasks() if t["samples"] == 40 and t["readout"] == "marginal"
                  and t["estimator"] == "mc"]
    out, _, fail = sweep.run_task(g, task, ("builtin", "teacher"), {})
    ds = data.builtin("teacher", P=6, D=3, P_test=2, seed=0)
    ref = predict(ds.X, ds.y, ds.X_test, N=12, chi=[1.0, 2.0], kappa=0.5, method="sample", activation="erf",
                  samples=40, chains=2, readout="marginal")
    assert fail is None
    np.testing.assert_allclose(out["test_mean"], [r["test_mean"] for r in ref], rtol=1e-12, atol=1e-14)


def test_spellings_of_one_method_resume_one_store_and_sampler_counts_are_only_judged_by_the_sampler(npz, capsys):
    """--resume refused a store made with `loop` when given `loop:1` (docs: either spelling); --samples 2 with
    loop was 'samples must be >= 4' though loop ignores it (as it ignores --mc-samples)."""
    a = grid.build(N="10", chi="1", kappa="1", method="loop")
    b = grid.build(N="10", chi="1", kappa="1", method="loop:01")
    assert a.coords["method"] == b.coords["method"] == ["loop:1"] and a.spec_json() == b.spec_json()
    code, out, err = run(BASE[:-1] + ["loop", "--data", npz, "--chi", "1", "--samples", "2", "--chains", "0"], capsys)
    assert code == 0 and "--samples applies to --method sample only: ignored by loop" in err, err
    assert run(["sample", "--data", npz, "--N", "30", "--chi", "1", "--kappa", "0.5", "--samples", "2"], capsys)[0] == 2


def test_derive_check_reads_stray_names_and_says_who_removes_what(tmp_path, capsys):
    from msat.derive import driver

    (tmp_path / "rescaling_o2.py").write_text("x = 1\n")
    (tmp_path / "rescaling_old.py").write_text("# a user's file\n")  # int('ld') crashed --check
    (tmp_path / "deep_layers_d2_ox.py").write_text("# another\n")
    assert driver.checked_in_order(tmp_path) == 2 and driver.checked_in_depth(tmp_path) == driver.DEFAULT_DEPTH
    said = "".join(driver.check(tmp_path, {"rescaling_o2.py": "x = 1\n"}))
    assert said.count("remove it by hand") == 2, said


@pytest.mark.parametrize("stray,named", [("rescaling_o99.py", "order 99"), ("deep_layers_d999_o1.py", "depth 999")])
def test_derive_check_refuses_a_stray_order_or_depth_beyond_what_it_derives(tmp_path, capsys, stray, named):
    """The order and depth --check compares at are read from the folder's file names: a stray rescaling_o99.py
    started an emission at order 99 that ran for hours (an explicit --order 99 was refused)."""
    (tmp_path / stray).write_text("# stray\n")
    code, _, err = run(["derive", "--check", "--out", tmp_path], capsys)
    assert code == 2 and named in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("flag,value,message", [("--widths", "-20,30", "widths must be a positive integer"),
                                                ("--chi", "-1,2", "chi must be a positive number"),
                                                ("--chi", "-1e-3", "chi must be a positive number"),
                                                ("--chi", "-inf", "chi must be a positive number"),
                                                ("--chi", "-Infinity,2", "chi must be a positive number")])
def test_a_negative_value_list_gets_the_options_own_message(npz, flag, value, message, capsys):
    """argparse took -20,30 or -1e-3 for an option and said "expected one argument"."""
    argv = BASE + ["--data", npz] + (["--chi", "1"] if flag != "--chi" else []) + [flag, value]
    code, _, err = run(argv, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("depth,fields", [(1, "S(s_1) = "), (2, "S(s_1, s_2) = "), (3, r"S(s_1, \dots, s_{3}) = ")])
def test_latex_names_the_deep_action_fields_once(depth, fields, capsys):
    """msat latex --depth 1 printed S(s_1, \\dots, s_{1}); the cumulant levels printed NumPy's
    \\operatorname{log1p}(x) where a reader writes log(1 + x) (the emitted code keeps log1p)."""
    code, out, _ = run(["latex", "--depth", str(depth)], capsys)
    assert code == 0 and any(line.startswith(fields) for line in out.splitlines()), out[:400]
    assert "log1p" not in out and r"\log{\left(1 - \frac{2 \theta}{N} \right)}" in out


SAMPLE = ["sample", "--N", "20", "--kappa", "0.5", "--samples", "400", "--chains", "2"]


def test_draws_of_a_ladder_mark_a_failed_point_and_a_labelled_file_needs_distinct_chi(npz, tmp_path, capsys):
    """A stuck point's chains were saved like a converged point's, nothing in the file said it failed; a .nc file of
    a ladder with a repeated chi was written and broke az.summary."""
    import arviz as az

    for suffix in ("npz", "nc"):
        path = tmp_path / f"draws.{suffix}"
        code, _, err = run(SAMPLE + ["--data", npz, "--chi", "1,1e300", "--draws", path, "--json", tmp_path / "r.json"],
                           capsys)
        assert code == 3 and "every chain stopped moving" in err, err
        if suffix == "npz":
            z = np.load(path)
            assert bool(z["chi0_converged"]) and not bool(z["chi1_converged"])
        else:
            assert az.from_netcdf(path).constant_data.converged.values.tolist() == [True, False]
    code, _, err = run(SAMPLE + ["--data", npz, "--chi", "1,1", "--draws", tmp_path / "dup.nc"], capsys)
    assert code == 2 and "distinct chi values" in err and not (tmp_path / "dup.nc").exists(), err


def test_an_output_that_cannot_be_created_is_refused_before_work(npz, tmp_path, capsys, monkeypatch):
    """os.access says yes to root in /proc: the sampling ran, the JSON was written, then the draws failed."""
    from msat.runtime.app import cli

    monkeypatch.setattr(cli, "_load_data", lambda *a, **k: pytest.fail("work started"))
    js = tmp_path / "r.json"
    code, _, err = run(SAMPLE + ["--data", npz, "--chi", "1", "--draws", "/proc/msat_x.npz", "--json", js], capsys)
    assert code == 2 and "cannot write /proc/msat_x.npz" in err and not js.exists(), err


def test_msat_run_refuses_an_empty_folder_and_a_flag_that_is_not_a_boolean(tmp_path, capsys, monkeypatch):
    from msat.runtime import run as api_run
    from msat.runtime.app import run as run_module

    monkeypatch.setattr(run_module, "compute", lambda *a, **k: pytest.fail("work started"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["run", "--quick", "--out", ""], capsys)
    assert code == 2 and "--out" in err and not list(tmp_path.iterdir()), err
    with pytest.raises(InputError, match="quick must be True or False"):
        api_run(tmp_path / "o", quick="yes")
    code, _, err = run(["run", "--depth", "0"], capsys)
    assert code == 2 and err.startswith("msat: error: depth must be a positive integer"), err


def test_wide_tables_are_not_cut_in_piped_output():
    """msat run's table printed 0.290/0.8... in 8 of its 10 columns when written to a file (80 columns)."""
    import io

    from rich.console import Console
    from rich.table import Table

    from msat.runtime.app.report import fit_width

    t = Table(title="wide")
    for i in range(12):
        t.add_column(f"method_{i}")
    t.add_row(*[f"0.{i:03d}/0.{i + 100:03d}" for i in range(12)])
    buf = io.StringIO()
    console = Console(file=buf, width=80)
    fit_width(console, t)
    console.print(t)
    assert "…" not in buf.getvalue() and "0.011/0.111" in buf.getvalue()


def test_a_seed_reads_like_a_count(npz, capsys):
    """--seed 1e3 was refused while --chains 1e1 and --depth 2.0 were read as integers; 1e300 printed 301 digits."""
    from msat.runtime import values

    assert values.seed(1e3) == 1000 and values.seed(np.int64(3)) == 3
    for bad in (1.5, -1, True, "1"):
        with pytest.raises(InputError, match="seed must be an integer >= 0"):
            values.seed(bad)
    code, _, err = run(BASE + ["--data", npz, "--chi", "1", "--seed", "1e300"], capsys)
    assert code == 2 and "got 1e+300" in err, err


def test_the_sample_table_is_titled_sample(npz, tmp_path, capsys):
    code, out, err = run(SAMPLE + ["--data", npz, "--chi", "1", "--json", tmp_path / "r.json"], capsys)
    assert code == 0 and "msat sample" in out + err and "msat predict" not in out + err


def test_a_misspelled_test_key_is_refused_not_ignored(tmp_path, capsys):
    """An .npz with 'Xtest' for X_test ran with no test points and no word (other keys are ignored): a key that
    differs from X_test or y_test only in case, '_' or '-' now exits 2 naming both; other extra keys still pass."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 4))
    for key in ("Xtest", "x_test", "X-Test", "ytest"):
        path = tmp_path / f"{key}.npz"
        np.savez(path, X=X, y=np.sign(X[:, 0]), **{key: X[:2] if key[0] in "xX" else np.ones(2)})
        code, _, err = run(BASE + ["--data", path, "--chi", "1"], capsys)
        assert code == 2 and f"'{key}'" in err and len(err.strip().splitlines()) == 1, err
    both = tmp_path / "both.npz"  # X_test was used and x_test silently dropped
    np.savez(both, X=X, y=np.sign(X[:, 0]), X_test=X[:2], x_test=X[2:5])
    code, _, err = run(BASE + ["--data", both, "--chi", "1"], capsys)
    assert code == 2 and "'X_test' and 'x_test'" in err and len(err.strip().splitlines()) == 1, err
    extra = tmp_path / "extra.npz"
    np.savez(extra, X=X, y=np.sign(X[:, 0]), X_test=X[:2], notes=np.zeros(3))
    code, out, err = run(BASE + ["--data", extra, "--chi", "1", "--json", "-"], capsys)
    assert code == 0 and len(json.loads(out)["test_mean"]) == 2, err


def test_a_flag_is_given_once_and_in_full_and_a_number_is_written_as_one(npz, tmp_path, capsys):
    """argparse kept the last of a repeated flag's values and took a prefix for the flag it abbreviates, and a
    CSV cell read by Python's float() took `1_000` and non-ASCII digits: each is now exit 2 with one line."""
    for argv, message in ((BASE + ["--data", npz, "--chi", "1", "--kappa", "0.7"], "--kappa is given more than once"),
                          (BASE + ["--data", npz, "--chi=1", "--chi", "2"], "--chi is given more than once"),
                          (["predict", "--data", npz, "--N", "30", "--kap", "0.5", "--chi", "1"],
                           "unrecognized option --kap: options are not abbreviated (did you mean --kappa?)"),
                          (["sweep", "--data", npz, "--N", "30", "--kappa", "1", "--chi", "1", "--g", "1"],
                           "did you mean --g-v or --g-w?")):
        code, _, err = run(argv, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (argv, err)
    for cell in ("1_000", "\u0661\u0662", "0x10"):
        table = tmp_path / "cells.csv"
        table.write_text(f"x1,y\n1,0.5\n{cell},-0.5\n0,0.1\n", encoding="utf-8")
        code, _, err = run(BASE + ["--data", table, "--chi", "1"], capsys)
        assert code == 2 and "non-numeric value" in err and len(err.strip().splitlines()) == 1, (cell, err)
    table.write_text("x1,y\n1e0,+.5\n-2.,-5E-1\n 0 ,0.1\n")
    code, out, err = run(BASE + ["--data", table, "--chi", "1", "--json", "-"], capsys)
    assert code == 0 and json.loads(out)["params"]["P"] == 3, err


def test_flags_lists_and_data_files_read_numbers_as_csv_cells_do(npz, tmp_path, capsys):
    """A flag's number, a list's items and an .npz array of text took Python's grammar (`--kappa 1_0` ran with
    kappa = 10, `--g-w 1_0,2` with 10, text '1_000' in X read as 1000) while a CSV cell refused it: all now
    follow the one grammar (values.NUMBER), exit 2 with one line; blanks around a number stay allowed."""
    for flag, value in (("--kappa", "1_0"), ("--chi", "1,2_0"), ("--g-w", "1_0,2"), ("--N", "\u0663\u0660"),
                        ("--seed", "0x1")):
        options = {"--N": "30", "--kappa": "0.5", "--chi": "1", flag: value}
        argv = ["predict", "--data", npz, "--method", "nngp"] + [a for kv in options.items() for a in kv]
        code, _, err = run(argv, capsys)
        assert code == 2 and value in err and len(err.strip().splitlines()) == 1, (flag, err)
    code, out, err = run(BASE + ["--data", npz, "--chi", " 2", "--json", "-"], capsys)
    assert code == 0 and json.loads(out)["chi"] == 2.0, err
    rng = np.random.default_rng(0)
    text = tmp_path / "text.npz"
    np.savez(text, X=rng.standard_normal((5, 2)).astype(str), y=rng.standard_normal(5))
    code, _, err = run(BASE + ["--data", text, "--chi", "1"], capsys)
    assert code == 2 and "X is not numeric" in err and len(err.strip().splitlines()) == 1, err


def test_a_failed_point_says_which_order_ran_and_why_a_variance_is_refused(tmp_path, capsys, monkeypatch):
    """A point that fails keeps the note of the order chosen for it (it was lost: the user could not tell which
    order failed); a loop-series test variance refused as negative says when it is zero to float64's precision
    (the prior's scale), not that the 1/N expansion fails."""
    from types import SimpleNamespace

    from msat.runtime.errors import ConvergenceError
    from msat.runtime.numerics.truncation import invalid as _invalid
    from msat.runtime.numerics.nonlinear_saddle import NonlinearSaddle

    # this one point failed at chi = 1 (q not normalisable at the cold start) until the cold start could anneal
    # from below chi = 1; it converges now (chi = 5: 2.7070 +- 0.0009 against the marginal sampler's 2.7075 +-
    # 0.0006), so the second point is made to fail
    solve = NonlinearSaddle.solve

    def failing(self, chi, *args, **kwargs):
        if chi > 1:
            raise ConvergenceError("adaptive: made to fail here", {"chi": chi})
        return solve(self, chi, *args, **kwargs)

    monkeypatch.setattr(NonlinearSaddle, "solve", failing)
    one = tmp_path / "one.csv"
    one.write_text("a,b,y\n1,2,3\n")
    code, out, err = run(["predict", "--data", one, "--N", "5", "--chi", "1,5", "--kappa", "0.5", "--activation",
                          "relu", "--mc-samples", "2000", "--json", "-"], capsys)
    assert json.loads(out)[0]["converged"]
    failed = json.loads(out)[-1]
    assert code == 3 and not failed["converged"] and any("order 2 by default" in w for w in failed["warnings"]), out
    assert "msat: warning: order 2 by default" in err
    solver = SimpleNamespace(params=SimpleNamespace(order=1, N=5, P=6, g_v=1.0), spec=SimpleNamespace(kss=np.ones(3)))
    point = SimpleNamespace(s_mean=None, s_var=None, chi=1e20)
    assert "zero to float64's precision" in _invalid(solver, SimpleNamespace(**vars(point), test_var=[-5e-17, 1e-17]))
    assert "expansion in 1/N" in _invalid(solver, SimpleNamespace(**vars(point), test_var=[-1e-3, 0.2]))
    assert _invalid(solver, SimpleNamespace(**vars(point), test_var=[-1e-20, 0.2])) is None  # round-off of 0.2
    # a review: beside a test point of vanishing variance (a training input at small kappa) a large negative one
    # was named round-off; it is the expansion's
    beside = SimpleNamespace(s_mean=1.5, s_var=0.1, chi=1.0, test_var=[-0.1, 1e-12, 0.3])
    assert "expansion in 1/N" in _invalid(solver, beside)


def test_sizes_that_are_not_integers_exit_2_in_predict_sample_and_sweep(capsys, tmp_path):
    """--P nan (also inf, 1e400, and --D, --P-test) reached int() and exited 1 ('internal error') in predict and
    sample; in a sweep so did every integer list (--N nan, --seed 1e400, --chains -inf, ...)."""
    base = ["--dataset", "teacher", "--N", "20", "--chi", "1", "--kappa", "0.5"]
    for cmd in (["predict", "--method", "nngp"], ["sample", "--samples", "20", "--chains", "2"]):
        for flag, value in (("--P", "nan"), ("--P", "inf"), ("--D", "1e400"), ("--P-test", "nan")):
            code, _, err = run(cmd + base + [flag, value], capsys)
            said = "beyond float64's range" if value == "1e400" else "must be an integer"  # as typed, not 'inf'
            assert code == 2 and said in err and len(err.strip().splitlines()) == 1, (flag, err)
    sweep = ["sweep", "--dataset", "teacher", "--P", "8", "--D", "3", "--kappa", "0.5", "--chi", "1", "--method",
             "nngp", "--workers", "1", "--out", tmp_path / "s.zarr"]
    for flag, value in (("--N", "nan"), ("--N", "20,inf"), ("--seed", "1e400"), ("--chains", "-inf"),
                        ("--mc-samples", "nan")):
        code, _, err = run(sweep + ([] if flag == "--N" else ["--N", "20"]) + [flag, value], capsys)
        said = "beyond float64's range" if value == "1e400" else "must be an integer"
        assert code == 2 and said in err and len(err.strip().splitlines()) == 1, (flag, err)
    assert not (tmp_path / "s.zarr").exists()


def test_local_sweep_workers_are_no_more_than_tasks_and_must_fit_in_memory(capsys, tmp_path, monkeypatch):
    """--workers 100000 started 100000 local processes for one task (it hung); now no more workers than tasks
    start, and their memory is checked before the store is made (by default as many as fit)."""
    from msat.runtime import memory, sweep

    store = tmp_path / "s.zarr"
    argv = ["sweep", "--dataset", "teacher", "--P", "8", "--D", "3", "--N", "20,40,80", "--kappa", "0.5", "--chi",
            "1", "--method", "nngp", "--workers", "100000", "--out", store]
    monkeypatch.setattr(memory, "available", lambda: int(2.5 * memory.SWEEP_WORKER_BYTES))
    code, _, err = run(argv, capsys)
    assert code == 2 and "3 local sweep workers needs" in err and "fewer --workers" in err, err
    assert len(err.strip().splitlines()) == 1 and not store.exists()
    monkeypatch.setattr(memory, "available", lambda: int(3.5 * memory.SWEEP_WORKER_BYTES))
    monkeypatch.setattr(sweep, "_run", lambda job, client, interrupted: [] if job.workers == 3 else pytest.fail(job))
    assert run(argv, capsys)[0] == 0
    # without --workers: the cores, but no more than fit in memory (refused only where not even one fits)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.setattr(memory, "available", lambda: int(2.5 * memory.SWEEP_WORKER_BYTES))
    assert memory.sweep_workers(None, 10) == 2 and memory.sweep_workers(None, 1) == 1
    monkeypatch.setattr(memory, "available", lambda: int(0.5 * memory.SWEEP_WORKER_BYTES))
    with pytest.raises(InputError, match="1 local sweep workers needs"):
        memory.sweep_workers(None, 10)


def test_sweep_figures_refuse_one_option_on_both_axes_and_a_store_without_test_points(capsys, tmp_path):
    """--x chi --y chi exited 1 ('axes don't match array'); two --sel of one option kept the last in silence;
    a store without test points drew an empty figure under numpy's RuntimeWarning (a second stderr line) or
    blamed the reference method."""
    store, empty = tmp_path / "s.zarr", tmp_path / "e.zarr"
    common = ["--dataset", "teacher", "--P", "8", "--D", "3", "--N", "20,40", "--kappa", "0.5", "--chi", "1,2",
              "--method", "nngp,exact", "--workers", "1"]
    assert run(["sweep"] + common + ["--out", store], capsys)[0] == 0
    assert run(["sweep"] + common + ["--P-test", "0", "--out", empty], capsys)[0] == 0
    png = tmp_path / "f.png"
    code, _, err = run(["sweep", "--plot", store, "--x", "chi", "--y", "chi", "--out", png], capsys)
    assert code == 2 and "--x and --y are both chi" in err and len(err.strip().splitlines()) == 1, err
    assert run(["sweep", "--plot", store, "--x", "N", "--y", "chi", "--out", png], capsys)[0] == 0
    code, _, err = run(["sweep", "--plot", store, "--x", "N", "--sel", "chi=1", "--sel", "chi=2", "--out", png], capsys)
    assert code == 2 and "--sel chi is given twice" in err, err
    for y, says in (("test_error", "no test points"), ("test_var", "no test points")):
        code, _, err = run(["sweep", "--plot", empty, "--x", "chi", "--y", y, "--out", png], capsys)
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert run(["sweep", "--plot", empty, "--x", "chi", "--y", "train_mean", "--sel", "N=20", "--out", png],
               capsys)[0] == 0


def test_bytes_that_are_not_utf8_in_the_command_reach_the_labelled_file_escaped(npz, tmp_path, capsys):
    """A file name with a byte that is not UTF-8 (argv's surrogate escape) made netCDF's UTF-8 attributes
    raise (exit 1, a truncated file left): the command and source attributes now spell it \\xff."""
    odd = tmp_path / b"d\xff.npz".decode("utf-8", "surrogateescape")
    odd.write_bytes(npz.read_bytes())
    nc = tmp_path / "r.nc"
    code, _, err = run(BASE + ["--data", odd, "--chi", "1", "--nc", nc], capsys)
    assert code == 0, err
    attrs = xr.open_dataset(nc).attrs
    assert "d\\xff.npz" in attrs["command"] and attrs["source"].endswith("d\\xff.npz")


def test_memory_running_out_past_the_estimate_and_a_closed_stdout_exit_2(npz, capsys, monkeypatch):
    """A MemoryError the estimate did not foresee (ulimit -v, other processes) and standard output closed
    (>&-, sys.stdout None) both exited 1 as internal errors."""
    import sys

    def exhausted(*a, **k):
        raise MemoryError()

    with monkeypatch.context() as m:
        m.setattr(sys.modules["msat.runtime.predict"], "predict", exhausted)
        code, _, err = run(BASE + ["--data", npz, "--chi", "1"], capsys)
    assert code == 2 and "out of memory" in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.setattr("sys.stdout", None)
    code, _, err = run(BASE + ["--data", npz, "--chi", "1"], capsys)
    assert code == 2 and "standard output: it is closed" in err, err


def test_derive_refuses_an_empty_out(tmp_path, capsys, monkeypatch):
    """derive --out '' (Path('') is '.') wrote its 34 generated modules into the current folder."""
    monkeypatch.chdir(tmp_path)
    for empty in ("", "  "):
        code, _, err = run(["derive", "--out", empty], capsys)
        assert code == 2 and "--out is empty" in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())


def test_a_path_the_system_refuses_is_a_usage_error_of_one_line(tmp_path, capsys):
    """File names over the system's limit (255 bytes) exited 1 as an internal error for --json, --nc and --data
    (an outside fuzz); --out of derive and run said 'cannot write' already."""
    long = "a" * 300
    base = ["predict", "--dataset", "teacher", "--P", "8", "--D", "4", "--P-test", "2", "--N", "20", "--chi", "2",
            "--kappa", "0.1", "--method", "nngp"]
    for extra in (["--json", str(tmp_path / f"{long}.json")], ["--nc", str(tmp_path / f"{long}.nc")]):
        code, _, err = run(base + extra, capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "too long" in err.lower(), err
    code, _, err = run(["predict", "--data", str(tmp_path / f"{long}.npz"), "--N", "20", "--chi", "2",
                        "--kappa", "0.1"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "internal error" not in err, err


def test_an_output_that_is_a_device_or_a_pipe_is_written_into_not_replaced(tmp_path):
    """`--json /dev/full` (an outside fuzz, as root) replaced the device with a regular file: the JSON was written
    beside it and moved over it, as for a regular file. A device or a pipe is now written into; here a FIFO,
    which stays a FIFO and delivers the text (a FIFO, not /dev/null: the old code would replace that too)."""
    import os
    import stat

    from msat.runtime.app import outputs

    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, so that opening for writing does not block
    try:
        outputs.write(fifo, '{"a": 1}\n')
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
        assert os.read(reader, 100) == b'{"a": 1}\n'
    finally:
        os.close(reader)


def test_an_out_folder_whose_name_a_file_holds_says_so(tmp_path, capsys):
    """`msat derive --out FILE` and `msat run --out FILE` on an existing regular file said 'File exists' (an
    outside audit), which reads as if the folder were in the way; they now say a file of that name is there."""
    f = tmp_path / "afile"
    f.write_text("kept\n")
    for args in (["derive", "--out", str(f)], ["run", "--quick", "--out", str(f)]):
        code, _, err = run(args, capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "a file of that name is there" in err, err
    assert f.read_text() == "kept\n"
