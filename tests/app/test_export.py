"""`msat predict --nc` (the sweep's labelled form for one run) and `msat sample --draws FILE.nc` (ArviZ
InferenceData): the files hold the same numbers as the JSON results, with the documented labels."""
import json
import warnings

import numpy as np
import pytest
import xarray as xr

from msat.runtime import data
from msat.runtime.app.console import main

TEACHER = ["--dataset", "teacher", "--P", "14", "--D", "5", "--P-test", "4", "--seed", "3"]


def test_predict_nc_holds_the_json_numbers_in_the_sweep_form(tmp_path, capsys):
    nc, js = tmp_path / "p.nc", tmp_path / "p.json"
    assert main(["predict", *TEACHER, "--N", "30", "--chi", "1,5.5,30", "--kappa", "0.5", "--method", "adaptive",
                 "--json", str(js), "--nc", str(nc)]) == 0
    ref = json.loads(js.read_text())
    st = xr.open_dataset(nc, engine="h5netcdf").load()
    for dim in ("method", "N", "depth", "kappa", "seed", "g_v", "g_w", "activation", "dressed", "P", "D", "P_test"):
        assert st.sizes[dim] == 1, dim
    # labelled as asked, as a sweep labels it; the order that ran is a variable
    assert list(st.chi.values) == [1.0, 5.5, 30.0] and st.chi.dtype == np.float64  # no relative token: numbers
    assert str(st.method.values[0]) == "adaptive" and np.isfinite(float(st.test_mean.sel(chi=5.5)[..., 0].squeeze()))
    assert int(st.N[0]) == 30 and int(st.depth[0]) == 1 and int(st.seed[0]) == 3 and st.attrs["generated_hash"]
    assert st.attrs["command"].startswith("msat predict --dataset teacher")  # what was run, not the host's argv
    pt = st.squeeze([d for d in st.dims if d not in ("chi", "train_point", "test_point")])
    for j, r in enumerate(ref):
        assert float(pt.chi_value[j]) == r["chi"] and bool(pt.converged[j])
        for k in ("train_mean", "test_mean", "test_var"):
            np.testing.assert_array_equal(pt[k].values[j], r[k])
        assert np.isnan(pt.s_mean[j]) if r["s_mean"] is None else float(pt.s_mean[j]) == r["s_mean"]
        assert float(pt.kernel_alignment[j]) == r["observables"]["kernel_alignment"]
        assert int(pt.order[j]) == r["order"] == 1
    np.testing.assert_array_equal(pt.test_target, data.builtin("teacher", P=14, D=5, P_test=4, seed=3).y_test)


@pytest.mark.parametrize("readout", ["sampled", "marginal"])
def test_sample_draws_nc_is_inference_data_with_the_results_means(tmp_path, readout):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az

    draws, js, nc = tmp_path / "d.nc", tmp_path / "s.json", tmp_path / "s.nc"
    assert main(["sample", *TEACHER, "--N", "20", "--chi", "1,20", "--kappa", "0.5", "--samples", "400",
                 "--chains", "2", "--readout", readout, "--draws", str(draws), "--json", str(js),
                 "--nc", str(nc)]) == 0
    ref = json.loads(js.read_text())
    idata = az.from_netcdf(str(draws))
    post = idata.posterior
    assert dict(post.sizes) == {"chain": 2, "draw": 400, "chi": 2, "train_point": 14, "test_point": 4}
    assert list(post.chi.values) == [1.0, 20.0] and idata.attrs["readout"] == readout
    assert idata.sample_stats.acceptance_rate.dims == ("chain", "draw", "chi")
    np.testing.assert_array_equal(idata.observed_data.y, data.builtin("teacher", P=14, D=5, P_test=4, seed=3).y)
    for j, r in enumerate(ref):  # the posterior means of the draws are the results' means
        np.testing.assert_allclose(post.test_output.isel(chi=j).mean(("chain", "draw")), r["test_mean"],
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(post.train_output.isel(chi=j).mean(("chain", "draw")), r["train_mean"],
                                   rtol=1e-12, atol=1e-12)
    assert ("train_output_cvar" in post) == (readout == "marginal")
    assert ("kernel_alignment" in post) == (readout == "sampled")
    summary = az.summary(idata, var_names=["test_output"])  # ArviZ reads it directly
    assert len(summary) == 2 * 4 and np.isfinite(summary["r_hat"]).all()
    st = xr.open_dataset(nc, engine="h5netcdf")
    assert str(st.method.values[0]) == "sample" and np.isfinite(st.rhat_max).all()
    np.testing.assert_allclose(st.test_mean_mcse.squeeze().values, [r["test_mean_mcse"] for r in ref], rtol=0)


def test_unwritable_files_exit_2(tmp_path, capsys):
    bad = tmp_path / "missing" / "p.nc"
    assert main(["predict", *TEACHER, "--N", "30", "--chi", "1", "--kappa", "0.5", "--method", "nngp",
                 "--nc", str(bad)]) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".nc", ".npz"])
def test_draws_of_a_first_point_that_failed_before_its_chains_ended(tmp_path, capsys, monkeypatch, suffix):
    """A point whose chains raise (a numerical failure inside a chain) leaves no draws: `.nc` ended in an internal
    error (exit 1, `draws[0]` of an empty list) and `.npz` wrote an empty file. Now: exit 3 with the one-line
    convergence message, the JSON written, and no draws file, with stderr saying why."""
    from msat.runtime.numerics import hmc

    def fails(*a, **k):
        raise np.linalg.LinAlgError("6-th leading minor of the array is not positive definite")

    monkeypatch.setattr(hmc, "run_chains", fails)
    out, js = tmp_path / ("d" + suffix), tmp_path / "d.json"
    rc = main(["sample", *TEACHER, "--N", "12", "--chi", "12", "--kappa", "0.5", "--samples", "20", "--chains", "2",
               "--json", str(js), "--draws", str(out)])
    err = capsys.readouterr().err
    assert rc == 3 and not out.exists() and js.exists()
    assert "no draws written" in err and "Traceback" not in err and "internal error" not in err
