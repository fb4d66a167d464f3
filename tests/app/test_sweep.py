"""`msat sweep` (runtime.grid, runtime.sweep): lists parsed before any work, a sweep on a local Dask
cluster of two processes equal to serial predict calls, points a method does not cover kept as NaN,
and --resume completing a store that lost tasks to the same numbers as an uninterrupted run."""
import math

import numpy as np
import pytest
import xarray as xr
import zarr

from msat.runtime import data, grid, predict
from msat.runtime.app.console import main
from msat.runtime.errors import InputError

ARGS = ["--dataset", "teacher", "--P", "12,9", "--D", "6", "--P-test", "3", "--seed", "0..1", "--N", "20,40",
        "--chi", "1,sqrtN,N", "--kappa", "0.5", "--method", "nngp,loop:2,exact,adaptive:1",
        "--activation", "linear,erf", "--workers", "2"]


def test_lists_ranges_relative_chi_and_errors():
    g = grid.build(N="20,40", chi="1,sqrtN,N", kappa="0.5,1", method="exact,loop:2", seed="3..5",
                   widths=None, P="10", D="4", P_test="2")
    assert g.coords["seed"] == [3, 4, 5] and g.coords["method"] == ["exact", "loop:2"]
    assert g.chi_values(40) == [1.0, math.sqrt(40), 40.0] and len(list(g.tasks())) == 2 * 2 * 2 * 3
    w = grid.build(widths="50x200,100x400", chi="1", kappa="0.5", g_w="1x2")
    assert grid.widths_of(w, w.coords["N"][1]) == (100, 400) and grid.g_w_of("1x2") == (1.0, 2.0)
    for bad in (dict(N="20", chi="1,z", kappa="1"), dict(N="20", chi="1", kappa="1", seed="5..2"),
                dict(N="20", chi="1", kappa="-1"), dict(N="20", chi="1", kappa="1", method="loop:x"),
                dict(N="20,20", chi="1", kappa="1"), dict(chi="1", kappa="1")):
        with pytest.raises(InputError):
            grid.build(**bad)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "s.zarr"
    assert main(["sweep", *ARGS, "--out", str(path)]) == 0
    return path


def test_sweep_on_two_workers_equals_serial_predict(store):
    st = xr.open_zarr(store).load()
    assert st.attrs["generated_hash"] and bool(st["done"].all())
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
                                          order=int(order) if order else None, activation=str(act), seed=int(seed))
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


def test_resume_completes_a_store_that_lost_tasks(store, tmp_path):
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
    # a store made by other parameters is refused, and so is overwriting without --resume
    assert main(["sweep", *[a_ if a_ != "0..1" else "0..2" for a_ in ARGS], "--out", str(cut), "--resume"]) == 2
    assert main(["sweep", *ARGS, "--out", str(cut)]) == 2
