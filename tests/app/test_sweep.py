"""`msat sweep` (runtime.grid, runtime.sweep): lists parsed before any work, a sweep on a local Dask
cluster of two processes equal to serial predict calls, points a method does not cover kept as NaN,
and --resume completing a store that lost tasks to the same numbers as an uninterrupted run."""
import json
import math

import numpy as np
import pytest
import xarray as xr
import zarr

from msat.runtime import data, grid, predict, sweep_store
from msat.runtime.app.console import main
from msat.runtime.errors import InputError

ARGS = ["--dataset", "teacher", "--P", "12,9", "--D", "6", "--P-test", "3", "--seed", "0..1", "--N", "20,40",
        "--chi", "1,sqrtN,N", "--kappa", "0.5", "--method", "nngp,loop:2,exact,adaptive:1",
        "--activation", "linear,erf", "--mc-samples", "4000", "--workers", "2"]


def test_lists_ranges_relative_chi_and_errors():
    g = grid.build(N="20,40", chi="1,sqrtN,N", kappa="0.5,1", method="exact,loop:2", seed="3..5",
                   widths=None, P="10", D="4", P_test="2")
    assert g.coords["seed"] == [3, 4, 5] and g.coords["method"] == ["exact", "loop:2"]
    assert g.chi_values(40) == [1.0, math.sqrt(40), 40.0] and len(list(g.tasks())) == 2 * 2 * 2 * 3
    w = grid.build(widths="50x200,100x400", chi="1", kappa="0.5", g_w="1x2")
    assert grid.widths_of(w, {"N": w.coords["N"][1], "depth": 0}) == (100, 400) and grid.g_w_of("1x2") == (1.0, 2.0)
    for bad in (dict(N="20", chi="1,z", kappa="1"), dict(N="20", chi="1", kappa="1", seed="5..2"),
                dict(N="20", chi="1", kappa="-1"), dict(N="20", chi="1", kappa="1", method="loop:x"),
                dict(N="20,20", chi="1", kappa="1"), dict(chi="1", kappa="1")):
        with pytest.raises(InputError):
            grid.build(**bad)


def test_order_takes_a_list_and_n_may_name_the_last_width_as_predict_lets_it(tmp_path, capsys):
    """The contract: every predict option takes a list in a sweep; --order was refused ('unrecognized
    arguments'). It orders the methods given without one (--method loop --order 1,2 is loop:1,loop:2); an
    explicit order and the methods that take none keep theirs. --N with --widths was refused where predict
    accepts it: a --N equal to every item's last width adds nothing; one that differs conflicts."""
    one = grid.build(N="20", chi="1", kappa="0.5", method="loop,exact,adaptive,loop:3", order="1,2")
    two = grid.build(N="20", chi="1", kappa="0.5", method="loop:1,loop:2,exact,adaptive:1,adaptive:2,loop:3")
    assert one.spec_json() == two.spec_json()
    assert grid.build(N="20", chi="1", kappa="0.5", order="0").coords["method"] == ["loop:0"]  # predict's default
    w = grid.build(N="20", widths="10x20,30x20", chi="1", kappa="0.5")
    assert w.spec_json() == grid.build(widths="10x20,30x20", chi="1", kappa="0.5").spec_json()
    for bad in (dict(N="30", widths="10x20"), dict(N="20,30", widths="10x20"), dict(N="20", widths="20x30")):
        with pytest.raises(InputError, match="conflicts with --widths"):
            grid.build(chi="1", kappa="0.5", **bad)
    from msat.runtime import sweep as sw  # where no item takes --order, the sweep says so (predict warns too)

    for methods, said in (("exact", True), ("loop:2,nngp", True), ("loop:2,adaptive", False), (None, False)):
        g = grid.build(N="20", chi="1", kappa="1", method=methods, order="1", P="8", D="3", P_test="2")
        assert any(s.startswith("--order: no task") for s in sw.precheck(g, ("builtin", "teacher"), {})) == said
    out = tmp_path / "o.zarr"
    code = main(["sweep", "--dataset", "teacher", "--P", "6", "--D", "3", "--P-test", "2", "--N", "20",
                 "--chi", "4", "--kappa", "0.5", "--method", "loop", "--order", "1,2", "--workers", "1",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    ds = xr.open_zarr(out)
    assert ds.method.values.tolist() == ["loop:1", "loop:2"]
    d = data.builtin("teacher", P=6, D=3, P_test=2, seed=0)
    for k, order in enumerate((1, 2)):
        r = predict(d.X, d.y, d.X_test, N=20, chi=4.0, kappa=0.5, method="loop", order=order)
        np.testing.assert_allclose(ds.test_mean.isel(method=k).values.ravel(), r.test_mean, rtol=1e-12)


def test_coordinates_are_values_not_spellings():
    """1.0 and 1 are one chi (a store made with one resumes with the other), 0.1 and 0.10 one kappa (a repeat,
    refused as `--kappa 0.1,0.1` is), and 1e100 is stored as '1e+100', not as its 101 digits."""
    a = grid.build(N="20", chi="1,2.5,N", kappa="0.5", g_w="1x2", widths=None)
    b = grid.build(N="20", chi="1.0,2.50,N", kappa="0.50", g_w="1.0x2", widths=None)
    assert a.spec_json() == b.spec_json() and a.coords["chi"] == ["1", "2.5", "N"]
    assert grid.build(N="20", chi="1e100", kappa="1").coords["chi"] == ["1e+100"]
    assert [grid.token(v) for v in (1.0, 0.1, 1e-5, 1e16, 160.0)] == ["1", "0.1", "1e-05", "1e+16", "160"]
    for bad in (dict(chi="1,1.0", kappa="1"), dict(chi="1", kappa="0.1,0.10"), dict(chi="1", kappa="1", g_v="2,2.0"),
                dict(chi="1", kappa="1", g_w="1x2,1.0x2.0"), dict(chi="1", kappa="1", dressed="true,yes")):
        with pytest.raises(InputError, match="repeated values"):
            grid.build(N="20", **bad)


def test_an_option_no_task_uses_is_said_once_before_any_work():
    """--samples in a sweep without the sampler is named (the store keeps no per-result warnings); an option some
    task uses is not, though other tasks ignore it (--mc-samples in a sweep over activations)."""
    from msat.runtime import sweep as sw

    g = grid.build(N="20", chi="1", kappa="1", method="nngp,exact", activation="linear,erf", P="8", D="3",
                   P_test="2", samples="100", mc_samples="500")
    said = sw.precheck(g, ("builtin", "teacher"), {})
    assert sorted(said) == ["--mc-samples applies to erf/relu --method adaptive only: no task of this sweep uses it",
                            "--samples applies to --method sample only: no task of this sweep uses it"], said
    g = grid.build(N="20", chi="1", kappa="1", method="nngp,adaptive", activation="erf", P="8", D="3", P_test="2",
                   mc_samples="4000")
    assert sw.precheck(g, ("builtin", "teacher"), {}) == []


def test_a_listed_false_and_seeds_over_a_data_file_are_named_when_nothing_uses_them():
    """`--dressed true,false` over exact alone, and `--seed 0,1` over a data file with methods that draw no random
    numbers, run identical copies: both are named; a loop task or the sampler uses them, and nothing is said."""
    from msat.runtime import data, sweep as sw

    ds = data.builtin("teacher", P=8, D=3, P_test=2, seed=0)
    g = grid.build(N="20", chi="1", kappa="1", method="exact", dressed="true,false", seed="0,1")
    said = sw.precheck(g, ds, {})
    assert sorted(said) == ["--dressed applies to --method loop only: no task of this sweep uses it",
                            "--seed: no task of this sweep uses it (the data come from --data and no method draws "
                            "random numbers): its values are identical copies"], said
    g = grid.build(N="20", chi="1", kappa="1", method="exact,loop", dressed="true,false", seed="0")
    assert sw.precheck(g, ds, {}) == []
    g = grid.build(N="20", chi="1", kappa="1", method="exact,sample", seed="0,1", samples="20")
    assert sw.precheck(g, ds, {}) == []
    g = grid.build(N="20", chi="1", kappa="1", method="exact", seed="0,1", P="8", D="3", P_test="2")
    assert sw.precheck(g, ("builtin", "teacher"), {}) == []


def test_bad_specs_exit_2_before_any_work(tmp_path, capsys):
    out = tmp_path / "never.zarr"
    base = ["sweep", "--dataset", "teacher", "--P", "8", "--D", "3", "--out", str(out)]
    ok = ["--N", "20", "--chi", "1", "--kappa", "1"]  # a valid request, to which each case adds one mistake
    for bad, says in ((["--N", "20", "--chi", "1", "--kappa", ""], "--kappa is empty"),
                      (["--N", "20", "--chi", "1,,2", "--kappa", "1"], "empty item"),
                      ([*ok, "--method", "exact,magic"], "unknown method"),
                      (["--chi", "1,N", "--kappa", "1"], "give --N"),
                      ([*ok, "--activation", "tanh"], "activation"),
                      ([*ok, "--workers", "0"], "--workers"),
                      # every task invalid as predict would judge it: bad input, not a store of failed tasks
                      ([*ok, "--method", "loop:99"], "not generated"),
                      ([*ok, "--activation", "erf", "--method", "loop"], "not available"),
                      ([*ok, "--g-w", "1x1"], "g_w"),
                      ([*ok, "--method", "sample", "--samples", "0"], "samples"),
                      ([*ok, "--estimator", "foo"], "estimator"),
                      ([*ok, "--method", "loop:"], "is an integer"),
                      ([*ok, "--seed", "0..100000000"], "over 100,000"),
                      (["--N", "20", "--chi", "1,2,3,4", "--kappa", "1", "--seed", "0..99999", "--g-v", "1,2,3"],
                       "1,200,000 points"),
                      ([*ok, "--method", "nngp:1"], "takes no order"),
                      ([*ok, "--target", "foo"], "--target")):
        assert main(base + bad) == 2, bad
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()  # refused before the store (or any task) was made
    assert main(base[:-2] + ["--N", "20", "--chi", "1", "--kappa", "1", "--out", "/proc/msat.zarr"]) == 2
    assert "cannot write" in capsys.readouterr().err
    not_a_store = tmp_path / "table.csv"
    not_a_store.write_text("a,b\n1,2\n")
    for path in (not_a_store, tmp_path):  # a file, a folder holding no store
        assert main(base[:-1] + [str(path), "--N", "20", "--chi", "1", "--kappa", "1", "--resume"]) == 2
        err = capsys.readouterr().err
        assert "not a sweep's store" in err and len(err.strip().splitlines()) == 1, err


def test_a_task_that_cannot_fit_refuses_the_sweep_before_any_data(tmp_path, capsys, monkeypatch):
    """One task of the grid needs more memory than there is: the whole sweep is bad input (exit 2, one line
    naming the task) before a store is made and before any task's data set is generated (was: the first
    task's set made, the large one failing inside a worker with a traceback)."""
    made = []
    monkeypatch.setattr(data, "builtin", lambda *a, **k: made.append(a) or pytest.fail("data made"))
    out = tmp_path / "never.zarr"
    code = main(["sweep", "--dataset", "teacher", "--P", "10,10000000", "--D", "100", "--P-test", "3",
                 "--N", "10", "--chi", "1", "--kappa", "0.1", "--method", "nngp", "--activation", "erf",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "P = 10000000" in err and "memory" in err, err
    assert not out.exists() and not made


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "s.zarr"
    assert main(["sweep", *ARGS, "--out", str(path)]) == 0
    return path


def test_sweep_on_two_workers_equals_serial_predict(store):
    st = xr.open_zarr(store).load()
    assert st.attrs["generated_hash"] and bool(st["done"].all())
    assert list(st["test_mean"].dims) == list(grid.DIMS) + ["test_point"]  # the documented layout
    assert st.sizes["train_point"] == 12 and st.sizes["test_point"] == 3 and st.sizes["kappa"] == 1
    assert {"msat_version", "command", "msat_sweep"} <= set(st.attrs) and st.attrs["command"].startswith("msat sweep --dataset")
    assert {"train_mean", "test_var", "s_mean", "s_var", "converged", "seconds", "chi_value", "test_mean_mcse",
            "kernel_alignment", "note"} <= set(st.data_vars)
    for method in st.method.values:
        name, _, order = str(method).partition(":")
        for act in st.activation.values:
            for P in st.P.values:
                for seed in st.seed.values:
                    ds = data.builtin("teacher", P=int(P), D=6, P_test=3, seed=int(seed))
                    for N in st.N.values:
                        # (a dict: sel(method=...) is the keyword of inexact matching)
                        pt = st.sel({"method": method, "activation": act, "P": P, "seed": seed, "N": N}).squeeze()
                        chis = [1.0, math.sqrt(N), float(N)]
                        np.testing.assert_allclose(pt["chi_value"], chis, rtol=0, atol=0)
                        try:
                            ref = predict(ds.X, ds.y, ds.X_test, N=int(N), chi=chis, kappa=0.5, method=name,
                                          order=int(order) if order else None, activation=str(act), seed=int(seed),
                                          mc_samples=4000)
                        except InputError as err:  # not covered: NaN, not converged, the reason kept
                            assert not pt["converged"].any() and np.isnan(pt["test_mean"]).all()
                            assert str(err) == str(pt["note"].values)
                            continue
                        for j, r in enumerate(ref):
                            assert bool(pt["converged"][j]) == r.converged
                            for k in ("train_mean", "test_mean", "test_var"):
                                got = pt[k].values[j]
                                np.testing.assert_allclose(got[:len(r[k])], r[k], rtol=1e-12, atol=1e-12)
                                assert np.isnan(got[len(r[k]):]).all()  # a smaller P pads with NaN
                            for k, v in (r.get("observables") or {}).items():  # scalar observables too
                                if r.converged and isinstance(v, float) and "iterations" not in k:
                                    np.testing.assert_allclose(pt[k].values[j], v, rtol=1e-12, atol=1e-12)


def test_depth_takes_a_list_and_is_a_dimension_of_the_store(tmp_path):
    """`--depth 1,3` (every predict option takes a list in a sweep): the store has a depth dimension, and each
    (N, depth) point equals `predict` with that depth; with --widths the depth coordinate is 0 (the items set
    it), and a depth list with --widths is refused before any work."""
    out = tmp_path / "d.zarr"
    assert main(["sweep", "--dataset", "teacher", "--P", "8", "--D", "4", "--P-test", "2", "--N", "20,40",
                 "--depth", "1,3", "--chi", "1,N", "--kappa", "0.5", "--method", "exact,loop:1",
                 "--workers", "1", "--out", str(out)]) == 0
    st = xr.open_zarr(out).load()
    assert list(st["depth"].values) == [1, 3] and list(st["test_mean"].dims) == list(grid.DIMS) + ["test_point"]
    ds = data.builtin("teacher", P=8, D=4, P_test=2, seed=0)
    for method in ("exact", "loop:1"):
        name, _, order = method.partition(":")
        for N in (20, 40):
            for depth in (1, 3):
                pt = st.sel({"method": method, "N": N, "depth": depth}).squeeze()
                ref = predict(ds.X, ds.y, ds.X_test, N=N, depth=depth, chi=[1.0, float(N)], kappa=0.5, method=name,
                              order=int(order) if order else None)
                for j, r in enumerate(ref):
                    assert r.converged and r.params["widths"] == [N] * depth
                    for k in ("train_mean", "test_mean", "test_var"):
                        np.testing.assert_allclose(pt[k].values[j], r[k], rtol=1e-12, atol=1e-12)
    # the depths differ (a test that the depth reached the tasks at all)
    assert not np.allclose(st["test_mean"].sel(depth=1).values, st["test_mean"].sel(depth=3).values)
    assert grid.build(widths="50x200,100", chi="1", kappa="1").coords["depth"] == [0]
    with pytest.raises(InputError, match="--depth goes with --N"):
        grid.build(widths="50x200", depth="1,2", chi="1", kappa="1")


def test_widths_items_are_a_dimension_named_widths(tmp_path, capsys):
    """DESIGN's store: dimensions named after the swept options. `--widths 20x30,10x30` lies along `widths` (it lay
    along N, "20x30" as an N), each item equals `predict` with those widths, `--plot` draws along it by default,
    and a store of the earlier layout is refused on --resume with the reason."""
    out = tmp_path / "w.zarr"
    argv = ["sweep", "--dataset", "teacher", "--P", "8", "--D", "4", "--P-test", "2", "--widths", "20x30,10x30",
            "--chi", "1,N", "--kappa", "0.5", "--method", "exact", "--workers", "1", "--out", str(out)]
    assert main(argv) == 0
    st = xr.open_zarr(out).load()
    assert "N" not in st.dims and list(st["widths"].values) == ["20x30", "10x30"]
    assert list(st["test_mean"].dims) == [("widths" if d == "N" else d) for d in grid.DIMS] + ["test_point"]
    ds = data.builtin("teacher", P=8, D=4, P_test=2, seed=0)
    for item, widths in (("20x30", [20, 30]), ("10x30", [10, 30])):
        ref = predict(ds.X, ds.y, ds.X_test, widths=widths, chi=[1.0, 30.0], kappa=0.5, method="exact")
        pt = st.sel(widths=item).squeeze()
        for j, r in enumerate(ref):
            np.testing.assert_allclose(pt["test_mean"].values[j], r["test_mean"], rtol=1e-12, atol=1e-12)
    assert not np.allclose(st["test_mean"].sel(widths="20x30").values, st["test_mean"].sel(widths="10x30").values)
    assert main(["sweep", "--plot", str(out), "--reference", "targets", "--sel", "chi=N"]) == 0
    assert (tmp_path / "w_test_error_vs_widths_by_method.png").exists()
    # the earlier layout: the items on a dimension N
    (out / "widths").rename(out / "N")
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert "kept the --widths items on the dimension N" in err and len(err.strip().splitlines()) == 1, err


def test_dataset_takes_a_list_and_is_a_dimension_of_the_store(tmp_path, capsys):
    """`--dataset ising,teacher`: every predict option takes a list in a sweep, the data set too; each point
    equals `predict` on that built-in set, and a --data store labels its one data set by the file's name."""
    out = tmp_path / "s.zarr"
    assert main(["sweep", "--dataset", "ising,Teacher", "--P", "8", "--D", "4", "--P-test", "2", "--seed", "0,1",
                 "--N", "20", "--chi", "1,N", "--kappa", "0.5", "--method", "exact", "--workers", "1",
                 "--out", str(out)]) == 0
    st = xr.open_zarr(out).load()
    assert list(st["dataset"].values) == ["ising", "teacher"] and "dataset" in st["test_mean"].dims
    for name in ("ising", "teacher"):
        for seed in (0, 1):
            ds = data.builtin(name, P=8, D=4, P_test=2, seed=seed)
            ref = predict(ds.X, ds.y, ds.X_test, N=20, chi=[1.0, 20.0], kappa=0.5, method="exact")
            pt = st.sel({"dataset": name, "seed": seed}).squeeze()
            for j, r in enumerate(ref):
                np.testing.assert_allclose(pt["test_mean"].values[j], r.test_mean, rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(pt["test_target"].values, ds.y_test, rtol=0, atol=0)
    assert not np.allclose(st["test_mean"].sel(dataset="ising").values, st["test_mean"].sel(dataset="teacher").values)
    assert main(["sweep", "--dataset", "ising,ising", "--N", "20", "--chi", "1", "--kappa", "1",
                 "--out", str(tmp_path / "no.zarr")]) == 2
    assert "repeated" in capsys.readouterr().err and not (tmp_path / "no.zarr").exists()
    assert main(["sweep", "--dataset", "ising,mnist", "--N", "20", "--chi", "1", "--kappa", "1",
                 "--out", str(tmp_path / "no.zarr")]) == 2
    assert "unknown built-in dataset 'mnist'" in capsys.readouterr().err
    f = tmp_path / "mine.npz"
    ds = data.builtin("teacher", P=8, D=4, P_test=2, seed=0)
    np.savez(f, X=ds.X, y=ds.y, X_test=ds.X_test)
    assert main(["sweep", "--data", str(f), "--N", "20", "--chi", "1", "--kappa", "0.5", "--method", "exact",
                 "--workers", "1", "--out", str(tmp_path / "f.zarr")]) == 0
    assert list(xr.open_zarr(tmp_path / "f.zarr")["dataset"].values) == ["mine.npz"]
    # a store of an msat before the dimension (its spec has no dataset) is not resumed into: its arrays lack it
    spec = json.loads(xr.open_zarr(out).attrs[sweep_store.MARK])
    spec.pop("dataset")
    sweep_store.set_attrs(str(out), **{sweep_store.MARK: json.dumps(spec)})
    assert main(["sweep", "--dataset", "ising,teacher", "--P", "8", "--D", "4", "--P-test", "2", "--seed", "0,1",
                 "--N", "20", "--chi", "1,N", "--kappa", "0.5", "--method", "exact", "--out", str(out),
                 "--resume"]) == 2
    assert "no dataset dimension" in capsys.readouterr().err


def test_resume_completes_a_store_that_lost_tasks(store, tmp_path, capsys):
    import shutil

    cut = tmp_path / "cut.zarr"
    shutil.copytree(store, cut)
    root = zarr.open_group(str(cut), mode="r+")
    done = root["done"][...]
    lost = np.zeros(done.size, bool)
    lost[::3] = True  # as if the sweep had stopped before these tasks were written
    lost = lost.reshape(done.shape)
    root["done"][...] = done & ~lost
    tm = root["test_mean"][...]
    tm[lost] = np.nan
    root["test_mean"][...] = tm
    assert main(["sweep", *ARGS, "--out", str(cut), "--resume"]) == 0
    a, b = xr.open_zarr(store).load(), xr.open_zarr(cut).load()
    assert bool(b["done"].all())
    xr.testing.assert_equal(a.drop_vars("seconds"), b.drop_vars("seconds"))
    # a store made by other parameters is refused, naming the first option that differs (the same values in
    # another order included), and so is overwriting without --resume
    capsys.readouterr()
    assert main(["sweep", *[a_ if a_ != "0..1" else "0..2" for a_ in ARGS], "--out", str(cut), "--resume"]) == 2
    assert "other parameters: seed was 0,1, now 0,1,2" in capsys.readouterr().err
    assert main(["sweep", *[a_ if a_ != "20,40" else "40,20" for a_ in ARGS], "--out", str(cut), "--resume"]) == 2
    assert "N was 20,40, now 40,20 (the same values in another order" in capsys.readouterr().err
    assert main(["sweep", *ARGS, "--out", str(cut)]) == 2


SLOW = ["--dataset", "teacher", "--P", "30", "--D", "10", "--P-test", "4", "--seed", "0..5", "--N", "40,80",
        "--chi", "1,2,4,8,16,sqrtN,N", "--kappa", "0.5", "--method", "exact,loop:3"]


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory):
    ref = tmp_path_factory.mktemp("ref") / "ref.zarr"
    assert main(["sweep", *SLOW, "--out", str(ref), "--workers", "1"]) == 0
    return xr.open_zarr(ref).load()


def _done(path):
    try:
        return int(np.sum(zarr.open_group(str(path), mode="r")["done"][...]))
    except Exception:  # noqa: BLE001 - not created yet
        return 0


def test_a_worker_killed_mid_sweep_loses_nothing(tmp_path, undisturbed):
    """SIGKILL one worker process of an existing cluster while `msat sweep --scheduler` runs on it: its
    tasks are retried elsewhere, and the store ends with every point, equal to an undisturbed sweep."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from dask.distributed import Client, LocalCluster

    out = tmp_path / "killed.zarr"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": ":0"}) as cluster:  # no warning where 8787 is taken
        with Client(cluster) as client:
            pids = list(client.run(os.getpid).values())
        proc = subprocess.Popen([sys.executable, "-m", "msat.runtime.app.console", "sweep", *SLOW, "--out", str(out),
                                 "--scheduler", cluster.scheduler_address],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t0 = time.time()
        while _done(out) < 2 and time.time() - t0 < 120:
            time.sleep(0.02)
        os.kill(pids[0], signal.SIGKILL)
        when = _done(out)
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert when < 24  # the kill came mid-sweep
    a, b = undisturbed, xr.open_zarr(out).load()
    assert bool(b["done"].all())
    xr.testing.assert_equal(a.drop_vars("seconds"), b.drop_vars("seconds"))


def test_ctrl_c_leaves_a_store_that_resumes_to_the_same_numbers(tmp_path, undisturbed):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "int.zarr"
    cmd = [sys.executable, "-m", "msat.runtime.app.console", "sweep", *SLOW, "--workers", "2"]
    proc = subprocess.Popen(cmd + ["--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while _done(out) < 3 and time.time() - t0 < 120:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130 and 0 < _done(out) < 24
    assert main(["sweep", *SLOW, "--out", str(out), "--resume", "--workers", "2"]) == 0
    a, b = undisturbed, xr.open_zarr(out).load()
    xr.testing.assert_equal(a.drop_vars("seconds"), b.drop_vars("seconds"))


def test_ctrl_c_while_the_store_is_made_stops_cleanly_and_workers_ignore_it(tmp_path, monkeypatch):
    """Ctrl-C reaches the whole process group: a local worker ignores it (it died with a traceback on stderr), and
    one that comes while the store is written is a flag, answered once the store is whole (it interrupted zarr's
    writes, which spilled a thousand lines on stderr), leaving a store that resumes."""
    import os
    import signal

    from msat.runtime import sweep as sw

    def worker_sigint(g, t, src, extra):  # nested: pickled by value, as the workers cannot import this module
        import signal

        return None, None, str(signal.getsignal(signal.SIGINT))  # how the worker handles SIGINT, as a failure

    g = grid.build(N="20", chi="1,2", kappa="0.5", method="nngp", seed="0..1", P="8", D="3", P_test="2",
                   source="teacher")
    failures = sw.sweep(g, ("builtin", "teacher"), tmp_path / "w.zarr", workers=1, task=worker_sigint)
    assert failures and {f["error"] for f in failures} <= {str(signal.SIG_IGN), str(int(signal.SIG_IGN))}
    prepare = sw._prepare

    def interrupted_prepare(*args):
        done = prepare(*args)
        os.kill(os.getpid(), signal.SIGINT)
        return done

    monkeypatch.setattr(sw, "_prepare", interrupted_prepare)
    with pytest.raises(KeyboardInterrupt):
        sw.sweep(g, ("builtin", "teacher"), tmp_path / "i.zarr", workers=1)
    monkeypatch.setattr(sw, "_prepare", prepare)
    assert _done(tmp_path / "i.zarr") == 0
    assert sw.sweep(g, ("builtin", "teacher"), tmp_path / "i.zarr", workers=1, resume=True) == []
    assert _done(tmp_path / "i.zarr") == 2


def test_sizes_with_a_data_file_exit_2(tmp_path, capsys):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((4, 2)), y=np.ones(4))
    out = tmp_path / "never.zarr"
    assert main(["sweep", "--data", str(path), "--P", "8", "--N", "20", "--chi", "1", "--kappa", "1",
                 "--out", str(out)]) == 2
    assert "--P" in capsys.readouterr().err and not out.exists()


def test_a_chi_point_that_did_not_converge_keeps_its_reason(tmp_path, capsys):
    """A non-converged chi point is data (exit 0, converged false), and the task's note says why, as predict
    would have said (was: an empty note, the solver's message lost); a chi outside [1, N] is warned of."""
    out = tmp_path / "nc.zarr"
    assert main(["sweep", "--dataset", "teacher", "--P", "10", "--D", "5", "--P-test", "3", "--workers", "1",
                 "--N", "20", "--chi", "1,1e140", "--kappa", "0.1", "--method", "loop", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 of 1 tasks hold points not covered or not converged" in err  # not in silence
    assert "--resume: no store" not in err
    # predict's warning for chi outside [1, N], once for the sweep (it was dropped: the store keeps no warnings)
    assert "warning: chi = 1e+140 at N = 20 outside [1, N]" in err and "chi = 1 at" not in err, err
    st = xr.open_zarr(out).load()
    assert st["converged"].values.ravel().tolist() == [True, False]
    d = data.builtin("teacher", P=10, D=5, P_test=3, seed=0)
    # predict on the same ladder: the same reason (a lone cold start at 1e140 begins elsewhere, at the heaviest mode)
    failed = predict(d.X, d.y, d.X_test, N=20, chi=[1.0, 1e140], kappa=0.1, method="loop")[-1]
    assert not failed.converged and str(st["note"].values.ravel()[0]) == f"chi = 1e+140: {failed.error}"[:400]
    # --resume with no store at --out (a mistyped name) starts a new one, and now says so
    assert main(["sweep", "--dataset", "teacher", "--P", "10", "--D", "5", "--P-test", "3", "--workers", "1",
                 "--N", "20", "--chi", "1", "--kappa", "0.1", "--method", "nngp", "--out", str(tmp_path / "typo.zarr"),
                 "--resume"]) == 0
    assert "--resume: no store at" in capsys.readouterr().err
