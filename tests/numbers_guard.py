"""The refactor guard: a fixed matrix of `predict` calls whose numbers a refactor must not move.

``CASES`` covers every method and activation on small problems with fixed seeds. ``compute()``
evaluates them through the public API; tests/app/test_numbers_unchanged.py compares the result
with tests/app/reference/predict_matrix_06cb2ef.json, written by this same function at commit 06cb2ef
(before the architecture redesign) with ``python tests/numbers_guard.py OUT.json``; compare_run checks a
`msat run` results.json against tests/app/reference/run_quick_06cb2ef.json.
Deterministic methods must agree to 1e-12; Monte Carlo ones within their standard errors.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

#: (name, dataset, P, D, P_test, predict keywords); N and chi given in the keywords
CASES = [
    ("linear-nngp", "teacher", 10, 6, 3, dict(method="nngp", N=30, chi="1,3,30")),
    ("linear-exact-PgtD", "teacher", 10, 6, 3, dict(method="exact", N=30, chi="1,3,30")),
    ("linear-exact-PltD", "ising", 12, 24, 4, dict(method="exact", N=40, chi="1,6.3,40")),
    ("linear-loop0", "ising", 12, 24, 4, dict(method="loop", order=0, N=40, chi="1,6.3,40")),
    ("linear-loop1-dressed", "ising", 12, 24, 4, dict(method="loop", order=1, dressed=True, N=40, chi="1,6.3,40")),
    ("linear-loop2", "teacher", 10, 6, 3, dict(method="loop", order=2, N=30, chi="1,3,30")),
    ("linear-loop3-dressed", "teacher", 10, 6, 3, dict(method="loop", order=3, dressed=True, N=30, chi="1,3,30")),
    ("linear-adaptive0", "ising", 12, 24, 4, dict(method="adaptive", order=0, N=40, chi="1,6.3,40")),
    ("linear-adaptive1-PgtD", "teacher", 10, 6, 3, dict(method="adaptive", order=1, N=30, chi="1,3,30")),
    ("linear-adaptive2-kernel", "ising", 12, 24, 4, dict(method="adaptive", order=2, N=40, chi="1,6.3,40")),
    ("linear-adaptive2-weights", "teacher", 10, 6, 3, dict(method="adaptive", order=2, N=30, chi="1,3,30")),
    ("erf-nngp", "teacher", 10, 6, 3, dict(method="nngp", activation="erf", N=30, chi="1")),
    ("relu-nngp", "teacher", 10, 6, 3, dict(method="nngp", activation="relu", N=30, chi="1")),
    ("erf-adaptive1-cumulant", "teacher", 10, 6, 3,
     dict(method="adaptive", order=1, activation="erf", estimator="cumulant", mc_samples=4000, seed=1, N=200, chi="1,2")),
    ("relu-adaptive0-cumulant", "teacher", 10, 6, 3,
     dict(method="adaptive", order=0, activation="relu", estimator="cumulant", mc_samples=4000, seed=2, N=200, chi="1,2")),
    ("erf-adaptive1-mc", "teacher", 8, 5, 2,
     dict(method="adaptive", order=1, activation="erf", estimator="mc", seed=3, N=20, chi="5,20")),
    ("relu-adaptive1-auto", "teacher", 8, 5, 2,
     dict(method="adaptive", order=1, activation="relu", seed=4, N=40, chi="1,10")),
    ("linear-sample", "teacher", 6, 4, 2, dict(method="sample", samples=150, chains=2, seed=5, N=10, chi="1,10")),
    ("erf-sample", "teacher", 6, 4, 2, dict(method="sample", activation="erf", samples=150, chains=2, seed=6, N=10, chi="10")),
]

#: per-result keys compared (lists of numbers or numbers)
KEYS = ("train_mean", "test_mean", "test_var", "s_mean", "s_var")
MC_ERRORS = {"train_mean": ("train_mean_mcse", "mc_error.train_mean"),
             "test_mean": ("test_mean_mcse", "mc_error.test_mean"),
             "test_var": (None, "mc_error.test_var")}


def _predict():
    try:  # the public API function (after the redesign)
        from msat.runtime import predict
        if callable(predict):
            return predict
    except ImportError:
        pass
    from msat.runtime.predict import predict  # before the redesign: a module
    return predict


def _as_dict(r):
    return r.to_dict() if hasattr(r, "to_dict") else r


def compute(names=None) -> dict:
    from msat.runtime import data

    predict = _predict()
    out = {}
    for name, dataset, P, D, P_test, kw in CASES:
        if names is not None and name not in names:
            continue
        ds = data.builtin(dataset, P=P, D=D, P_test=P_test, seed=0)
        res = predict(ds.X, ds.y, ds.X_test, kappa=0.5, **kw)
        res = [_as_dict(r) for r in (res if isinstance(res, list) else [res])]
        rows = []
        for r in res:
            row = {k: r.get(k) for k in KEYS}
            row["converged"] = r.get("converged")
            row["chi"] = r.get("chi")
            for k in ("train_mean_mcse", "test_mean_mcse"):
                if k in r:
                    row[k] = r[k]
            if "mc_error" in r:
                row["mc_error"] = r["mc_error"]
            obs = r.get("observables") or {}
            row["observables"] = {k: v for k, v in obs.items()
                                  if isinstance(v, (int, float)) and not isinstance(v, bool)}
            rows.append(row)
        out[name] = rows
    return out


TOL = 1e-12
REFERENCE = Path(__file__).resolve().parent / "app" / "reference"


def reference(name: str) -> dict:
    return json.loads((REFERENCE / name).read_text())


def _walk(a, b, path, tol=TOL):
    """Every number of b (the reference) against a, recursively."""
    if isinstance(b, dict):
        for k in b:
            _walk(a[k], b[k], f"{path}.{k}", tol)
    elif isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, f"{path}[{i}]", tol)
    elif isinstance(b, (int, float)) and not isinstance(b, bool):
        assert a is not None and abs(a - b) <= tol * max(1.0, abs(b)), (path, a, b)
    else:
        assert a == b, (path, a, b)


def compare_run(res: dict, ref: dict) -> None:
    """The deterministic entries of a `msat run` results.json within 1e-12 of the reference, the
    sampled ones within four combined MCSE."""
    assert res["chis"] == pytest.approx(ref["chis"], rel=1e-15)
    for method, cols in ref["rows"].items():
        if method == "sample":
            continue
        _walk(res["rows"][method], cols, f"rows.{method}")
    s_new, s_ref = res["rows"]["sample"], ref["rows"]["sample"]
    for q in ("disc_train", "disc_test", "alignment", "omega"):
        err = np.hypot(s_new[q + "_err"], s_ref[q + "_err"])
        z = np.abs(np.array(s_new[q]) - s_ref[q]) / err
        assert np.all(z <= 4), (q, z)
    _walk(res["predict_points"], ref["predict_points"], "predict_points")
    _walk(res["statement3"], ref["statement3"], "statement3")
    orders_new, orders_ref = res["orders"], ref["orders"]
    for key in ("errors", "adaptive_o2", "statement2"):
        _walk(orders_new[key], orders_ref[key], f"orders.{key}")
    for regime, variants in orders_ref["errors"].items():
        for variant, per_L in variants.items():
            for L, errs in enumerate(per_L):
                name = f"{regime} {variant} L={L}"
                # a slope through differences of size e moves by ~1e-14 / e under round-off
                if min(errs) > 1e-10 and orders_ref["slopes"][name] is not None:
                    tol = 1e-13 / min(errs)
                    assert orders_new["slopes"][name] == pytest.approx(orders_ref["slopes"][name], abs=tol), name
    assert [c["status"] for c in res["checks"]] == [c["status"] for c in ref["checks"]]



if __name__ == "__main__":
    result = compute()
    with open(sys.argv[1], "w") as fh:
        json.dump(result, fh, indent=1, default=lambda x: np.asarray(x).tolist())
        fh.write("\n")
