"""`msat sweep` after an outside audit: stores left by a kill while they were made or while an observable's array
was added, the `failures` attribute after a resume, a resume over other data, integers typed in non-ASCII digits,
and a sweep whose every task only its data show to be invalid. Each case is checked against something
independent: an uninterrupted sweep, or `predict` itself."""
import json
import shutil

import numpy as np
import pytest
import xarray as xr
import zarr

from msat.runtime import data, grid, predict, sweep
from msat.runtime.app.console import main
from msat.runtime.errors import InputError

TINY = ["--dataset", "teacher", "--P", "6", "--D", "4", "--P-test", "2", "--N", "10", "--chi", "1,N",
        "--kappa", "0.5", "--workers", "1"]


def _run(argv, capsys):
    code = main(["sweep", *argv])
    return code, capsys.readouterr().err


def _with(argv, option, value):
    """argv with `option` set to `value` (replaced where it is given, else added)."""
    if option in argv:
        i = argv.index(option)
        return argv[:i + 1] + [value] + argv[i + 2:]
    return argv + [option, value]


def _one_line(err):
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("msat: warning")]
    return len(lines) == 1 and "Traceback" not in err


def _same(a, b):
    a, b = (xr.open_zarr(p).load() for p in (a, b))
    xr.testing.assert_equal(a.drop_vars("seconds"), b.drop_vars("seconds"))
    assert {k: v for k, v in a.attrs.items() if k != "command"} == {k: v for k, v in b.attrs.items() if k != "command"}


def test_a_store_whose_making_was_killed_is_named_incomplete(tmp_path, capsys, monkeypatch):
    """A kill while the store is made, after its arrays and before its marker (written last): --resume names the
    store incomplete (exit 2, one line), and doing what it says works."""
    from msat.runtime import sweep_store

    out = tmp_path / "s.zarr"
    argv = [*TINY, "--method", "nngp", "--out", str(out)]

    def killed(*a, **k):
        raise SystemExit(137)  # the process dies here

    monkeypatch.setattr(sweep_store, "set_attrs", killed)
    with pytest.raises(SystemExit):
        main(["sweep", *argv])
    monkeypatch.undo()
    capsys.readouterr()
    code, err = _run([*argv, "--resume"], capsys)
    assert code == 2 and _one_line(err) and "incomplete sweep store" in err and "delete it" in err, err
    shutil.rmtree(out)
    assert _run(argv, capsys)[0] == 0


def test_a_store_marked_first_and_missing_an_array_is_named_incomplete(tmp_path, capsys):
    """A store of an older msat (marker written first) killed before its s_var array was made: --resume names it
    incomplete (exit 2, one line); was: accepted, then 'internal error: KeyError: s_var' (exit 1) on every run."""
    out = tmp_path / "s.zarr"
    argv = [*TINY, "--method", "nngp", "--out", str(out)]
    assert _run(argv, capsys)[0] == 0
    root = zarr.open_group(str(out), mode="r+")
    root["done"][...] = False
    shutil.rmtree(out / "s_var")
    (out / ".zmetadata").unlink()  # consolidated as the store's last step: not there yet
    code, err = _run([*argv, "--resume"], capsys)
    assert code == 2 and _one_line(err) and "incomplete sweep store" in err, err


@pytest.mark.parametrize("broken", ["not consolidated", "no dimension names"])
def test_an_observable_array_left_by_a_kill_is_completed_on_resume(tmp_path, capsys, broken):
    """A kill while an observable's array was added (made, but not yet in .zmetadata, or without its dimension
    names): --resume completes the store to the numbers of an uninterrupted sweep (was: 'internal error:
    ValueError: variable 'kernel_alignment' already exists' on every resume)."""
    ref, cut = tmp_path / "ref.zarr", tmp_path / "cut.zarr"
    argv = [*TINY, "--seed", "0..1", "--method", "adaptive:1"]
    assert _run([*argv, "--out", str(ref)], capsys)[0] == 0
    assert "kernel_alignment" in xr.open_zarr(ref)
    shutil.copytree(ref, cut)
    root = zarr.open_group(str(cut), mode="r+", use_consolidated=False)
    root["done"][...] = False  # the kill came while the first task's outputs were written
    root["kernel_alignment"][...] = np.nan
    meta = json.loads((cut / ".zmetadata").read_text())
    meta["metadata"] = {k: v for k, v in meta["metadata"].items() if not k.startswith("kernel_alignment/")}
    (cut / ".zmetadata").write_text(json.dumps(meta))
    if broken == "no dimension names":
        (cut / "kernel_alignment" / ".zattrs").unlink()
    code, err = _run([*argv, "--out", str(cut), "--resume"], capsys)
    assert code == 0, err
    _same(ref, cut)


def test_a_resume_that_ran_the_failed_tasks_clears_the_failures(tmp_path):
    """`failures` names the tasks that failed; once a resume ran them the store equals an uninterrupted one (the
    attribute was kept)."""
    mark = tmp_path / "fixed"

    def flaky(g, t, source, extra):  # nested: pickled by value, as the workers cannot import this module
        import os

        from msat.runtime.sweep import run_task

        if t["seed"] == 1 and not os.path.exists(mark):
            raise RuntimeError("simulated worker failure")
        return run_task(g, t, source, extra)

    g = grid.build(N="10", chi="1,N", kappa="0.5", method="exact", seed="0..2", P="6", D="4", P_test="2",
                   source="teacher")
    out, ref = tmp_path / "f.zarr", tmp_path / "ref.zarr"
    failed = sweep.sweep(g, ("builtin", "teacher"), out, workers=1, task=flaky)
    assert [f["task"]["seed"] for f in failed] == [1]
    assert json.loads(xr.open_zarr(out).attrs["failures"]) == failed
    mark.touch()
    assert sweep.sweep(g, ("builtin", "teacher"), out, workers=1, resume=True, task=flaky) == []
    assert sweep.sweep(g, ("builtin", "teacher"), ref, workers=1) == []
    assert "failures" not in xr.open_zarr(out).attrs
    _same(ref, out)


def test_resume_refuses_another_target_or_changed_data(tmp_path, capsys):
    """A store over a CSV file resumes only with the same target column and the same bytes (was: resumed, mixing
    two data sets); a store made before the data's identity was kept stays resumable."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((8, 3))
    csv = tmp_path / "d.csv"
    rows = ["a,b,c,y,z"] + [",".join(f"{v:.6f}" for v in (*x, x[0], -x[1])) for x in X]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "d.zarr"
    argv = ["--data", str(csv), "--N", "10", "--chi", "1", "--kappa", "0.5", "--method", "nngp", "--workers", "1",
            "--out", str(out)]
    assert _run(argv, capsys)[0] == 0
    code, err = _run([*argv, "--target", "z", "--resume"], capsys)
    assert code == 2 and _one_line(err) and "other parameters: the data's target column was y, now z" in err, err
    assert _run([*argv, "--target", "y", "--resume"], capsys)[0] == 0  # the same data, said explicitly
    csv.write_text("\n".join(rows[:-1] + [rows[-1].replace(",", ",1", 1)]) + "\n")
    code, err = _run([*argv, "--resume"], capsys)
    assert code == 2 and _one_line(err) and "the data file's contents differ (SHA-256" in err, err
    spec = json.loads(xr.open_zarr(out).attrs["msat_sweep"])
    del spec["data"]  # as a store made before this change
    zarr.open_group(str(out), mode="r+").attrs["msat_sweep"] = json.dumps(spec, sort_keys=True)
    zarr.consolidate_metadata(str(out))
    assert _run([*argv, "--resume"], capsys)[0] == 0


def test_a_change_of_spelling_names_the_real_difference(tmp_path, capsys):
    """A store made with --N 10,20 resumed with --widths 10,20: the widths were given another way (was: 'N was
    10,20, now 10,20 (the same values in another order...)')."""
    out = tmp_path / "w.zarr"
    argv = ["--dataset", "teacher", "--P", "6", "--D", "4", "--P-test", "2", "--chi", "1", "--kappa", "0.5",
            "--method", "nngp", "--workers", "1", "--out", str(out)]
    assert _run([*argv, "--N", "10,20"], capsys)[0] == 0
    code, err = _run([*argv, "--widths", "10,20", "--resume"], capsys)
    assert code == 2 and _one_line(err) and "the widths were given with --N, now with --widths" in err, err


@pytest.mark.parametrize("option,value", [("method", "loop:²"), ("method", "loop:١"), ("seed", "0..1_0"),
                                          ("seed", "٠..١"), ("N", "𝟙..٣2")])
def test_integers_in_non_ascii_digits_or_with_underscores_exit_2(tmp_path, capsys, option, value):
    """docs/cli.md: numbers are ASCII; `--method loop:²` crashed (exit 1), the others were taken by int()."""
    out = tmp_path / "never.zarr"
    code, err = _run(_with([*TINY, "--method", "loop", "--out", str(out)], f"--{option}", value), capsys)
    assert code == 2 and _one_line(err) and not out.exists(), err
    assert grid.build(N="10", chi="1", kappa="1", seed="0..2", method="loop:2").coords["seed"] == [0, 1, 2]


@pytest.mark.parametrize("bad", [("--kappa", "1e-14"), ("--g-w", "1e-40")])
def test_a_sweep_whose_every_task_its_data_refuse_exits_2(tmp_path, capsys, bad):
    """kappa below the float64 resolution of the data's kernel, or inputs out of scale: predict exits 2, and so does
    a sweep all of whose tasks are such (one line, predict's reason, no store); was exit 0 with a store of NaN."""
    out = tmp_path / "bad.zarr"
    code, err = _run(_with([*TINY, "--method", "exact", "--seed", "0..1", "--out", str(out)], *bad), capsys)
    ds = data.builtin("teacher", P=6, D=4, P_test=2, seed=0)
    opts = dict(kappa=0.5, g_w=1.0)
    opts[bad[0][2:].replace("-", "_")] = float(bad[1])
    with pytest.raises(InputError) as ref:
        predict(ds.X, ds.y, ds.X_test, N=10, chi=[1.0, 10.0], method="exact", **opts)
    assert code == 2 and _one_line(err) and not out.exists(), err
    assert f"no task of this sweep is valid (the first: {ref.value})" in err, err


def test_a_sweep_with_some_tasks_its_data_refuse_keeps_them_as_data(tmp_path, capsys):
    """Only some tasks invalid: exit 0, those tasks NaN with predict's reason as their note, the others as predict."""
    out = tmp_path / "some.zarr"
    code, err = _run(_with([*TINY, "--method", "exact", "--out", str(out)], "--kappa", "1e-14,0.5"), capsys)
    assert code == 0, err
    st = xr.open_zarr(out).load()
    ds = data.builtin("teacher", P=6, D=4, P_test=2, seed=0)
    with pytest.raises(InputError) as ref:
        predict(ds.X, ds.y, ds.X_test, N=10, chi=[1.0, 10.0], kappa=1e-14, method="exact")
    bad, good = st.sel(kappa=1e-14).squeeze(), st.sel(kappa=0.5).squeeze()
    assert str(bad["note"].values) == str(ref.value) and not bad["converged"].any()
    res = predict(ds.X, ds.y, ds.X_test, N=10, chi=[1.0, 10.0], kappa=0.5, method="exact")
    for j, r in enumerate(res):
        np.testing.assert_allclose(good["test_mean"].values[j], r["test_mean"], rtol=1e-12, atol=1e-12)


def test_a_sweep_with_stderr_closed_writes_its_store(tmp_path):
    """`2>&-`: the progress check (sys.stderr.isatty) and the log lines raised (an internal error, exit 1,
    the store's tasks never written); the store holds the results, the log is dropped."""
    import os
    import subprocess
    import sys

    out = tmp_path / "s.zarr"
    res = subprocess.run([sys.executable, "-m", "msat.runtime.app.console", "sweep", *TINY, "--out", str(out)],
                         stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(2))
    assert res.returncode == 0 and "internal error" not in res.stdout, res.stdout
    st = xr.open_zarr(out)
    assert bool(st.done.all()) and bool(st.converged.all())


def test_a_local_cluster_whose_workers_all_died_ends_the_wait_with_its_tasks_failed(monkeypatch):
    """An audit killed the workers of a local sweep until Dask restarted none: the sweep waited for ever with tasks
    pending. Once the cluster has had no worker for the grace period, the tasks not done are failures (exit 3),
    those done before are kept, and a cluster with workers is never judged gone."""
    from msat.runtime import sweep_wait

    class Client:  # the scheduler's answer: workers or none
        def __init__(self, workers):
            self.workers = workers

        def scheduler_info(self):
            return {"workers": {f"tcp://w{i}": {} for i in range(self.workers)}}

    class Pending:  # dask's as_completed with one future done and two that never finish
        def __init__(self):
            self.ready = ["a"]

        def is_empty(self):
            return False

        def has_ready(self):
            return bool(self.ready)

        def next_batch(self, block=False):
            out, self.ready = self.ready, []
            return out

    clock = [0.0]
    monkeypatch.setattr(sweep_wait.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(sweep_wait.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + 0.5))
    futures = {"a": 0, "b": 1, "c": 2}
    got = list(sweep._with_lost(((f, None) for f in sweep_wait.completed(
        Pending(), False, sweep_wait.workers_gone(Client(0), grace=5.0))), futures))
    assert got[0] == ("a", None) and [f for f, _ in got[1:]] == ["b", "c"]
    assert all("no worker left" in why for _, why in got[1:]) and clock[0] > 5.0
    alive = sweep_wait.workers_gone(Client(2), grace=5.0)
    for _ in range(40):
        clock[0] += 0.5
        assert not alive()
