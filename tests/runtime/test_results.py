"""The result object (runtime.results): the contract's JSON keys and order, item access as on the
JSON, the notebook display and the labelled xarray form."""
import json

import numpy as np

from msat.runtime import params
from msat.runtime.errors import ConvergenceError
from msat.runtime.results import Result

KEYS = ["method", "order", "params", "chi", "train_mean", "test_mean", "test_var", "s_mean", "s_var",
        "converged", "seconds", "warnings"]


def _result(chi=2.0, method="sample", **extra):
    p = params.build(3, 2, 2, N=10, kappa=0.5, method=method, samples=10, chains=1)
    return Result.point(p, chi, {"train_mean": np.array([1.0, 2.0, 3.0]), "test_mean": np.array([0.5, 0.25]),
                                 "test_var": np.array([0.1, 0.2])},
                        {"train_mean_mcse": [0.01, 0.02, 0.03], "test_mean_mcse": [0.1, 0.2], "rhat_max": 1.001,
                         "ess_min": 900.0, **extra})


def test_json_object_of_the_contract():
    r = _result()
    d = r.to_dict()
    assert list(d)[:len(KEYS)] == KEYS
    assert d["params"] == {"N": 10, "kappa": 0.5, "g_v": 1.0, "g_w": [1.0], "activation": "linear", "dressed": False,
                           "P": 3, "D": 2, "P_test": 2, "widths": [10], "depth": 1, "samples": 10, "chains": 1,
                           "seed": 0, "readout": "sampled", "chi": 2.0}
    assert d["order"] is None and d["train_mean"] == [1.0, 2.0, 3.0] and d["test_mean_mcse"] == [0.1, 0.2]
    assert json.loads(json.dumps(d)) == d
    assert r["test_var"] == [0.1, 0.2] and isinstance(r.test_var, np.ndarray) and set(r) == set(d)


def test_a_chi_outside_one_to_n_is_allowed_with_a_warning():
    assert _result(chi=50.0).warnings and not _result(chi=5.0).warnings


def test_failed_point_record():
    f = Result.failed(7.0, ConvergenceError("saddle: Newton did not converge", {"iterations": 200}))
    assert f.to_dict() == {"chi": 7.0, "converged": False, "error": "saddle: Newton did not converge",
                           "diagnostics": {"iterations": 200.0}, "seconds": 0.0, "warnings": []}


def test_notebook_display_shows_values_and_warnings():
    html = _result(chi=50.0)._repr_html_()
    for text in ("msat result", "sample", "0.5", "rhat_max", "outside [1, N]"):
        assert text in html, text


def test_xarray_form():
    ds = _result().to_xarray()
    assert ds.train_mean.dims == ("train_point",) and ds.test_var.dims == ("test_point",)
    np.testing.assert_array_equal(ds.test_mean_mcse.values, [0.1, 0.2])
    assert ds.attrs["method"] == "sample" and ds.attrs["chi"] == 2.0 and ds.attrs["N"] == 10
    # the method's own numbers too (an audit found rhat_max and train_var missing from the labelled form)
    assert float(ds.rhat_max) == 1.001 and float(ds.ess_min) == 900.0


def test_the_xarray_form_writes_to_netcdf_and_keeps_whether_the_point_converged(tmp_path):
    """An adaptive result with its default draws (mc_samples null) could not be written: netCDF attributes hold
    no null; a sampled point whose chains disagree (values, converged false) lost that in the labelled form."""
    import xarray as xr

    p = params.build(3, 2, 2, N=10, kappa=0.5, method="adaptive", activation="erf")
    assert p.public()["mc_samples"] is None
    r = Result.point(p, 2.0, {"train_mean": np.ones(3), "test_mean": np.zeros(2), "test_var": np.ones(2)})
    r.to_xarray().to_netcdf(tmp_path / "a.nc")
    back = xr.open_dataset(tmp_path / "a.nc")
    assert back.attrs["mc_samples"] == 0 and bool(back.converged) and back.attrs["activation"] == "erf"
    bad = _result().unconverged("chains disagree (R-hat max 1.08 > 1.05)", {"rhat_max": 1.08})
    ds = bad.to_xarray()
    assert not bool(ds.converged) and "R-hat" in ds.attrs["error"]


def test_a_methods_own_keys_read_as_attributes_as_on_the_json():
    """r.test_mean_mcse raised AttributeError though r["test_mean_mcse"] worked and the README promises attributes;
    an unknown name still raises AttributeError (hasattr stays false) and the object still pickles."""
    import pickle

    r = _result(train_var=[0.3, 0.2, 0.1])
    assert isinstance(r.test_mean_mcse, np.ndarray) and list(r.test_mean_mcse) == r["test_mean_mcse"]
    assert r.rhat_max == r["rhat_max"] and list(r.train_var) == [0.3, 0.2, 0.1]
    assert not hasattr(r, "nonsense") and pickle.loads(pickle.dumps(r)).rhat_max == 1.001
    np.testing.assert_array_equal(r.to_xarray().train_var.values, [0.3, 0.2, 0.1])
