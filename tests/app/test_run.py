"""`msat run --quick`: the main job end to end (figures, JSON, CSV, THEORY §9 checks) and its
numbers against fresh `msat predict` calls."""
import csv
import json

import numpy as np
import pytest

from msat.runtime import data
from msat.runtime.app import console
from msat.runtime import predict
from msat.runtime.app.run import QUICK


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = console.main(["run", "--quick", "--out", str(out)])
    return code, out


def test_quick_run_writes_everything_and_passes(quick_run):
    code, out = quick_run
    assert code == 0
    for name in ("fig_discrepancy.png", "fig_orders.png", "fig_features.png", "results.json", "results.csv"):
        assert (out / name).stat().st_size > 1000, name
    res = json.loads((out / "results.json").read_text())
    assert [c["statement"] for c in res["checks"]] == [1, 2, 3, 4]
    assert all(c["status"] == "PASS" for c in res["checks"]), res["checks"]
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert any(r["method"] == "sample" and r["quantity"] == "disc_train" for r in rows)


def test_quick_run_numbers_match_fresh_predict(quick_run):
    _, out = quick_run
    res = json.loads((out / "results.json").read_text())
    ds = data.builtin("ising", P=QUICK.P, D=QUICK.D, P_test=QUICK.P_test, seed=QUICK.seed)
    for point in res["predict_points"]:
        fresh = predict(ds.X, ds.y, ds.X_test, N=QUICK.N, chi=point["chi"], kappa=QUICK.kappa, method=point["method"])
        np.testing.assert_allclose(point["test_mean"], fresh["test_mean"], rtol=1e-12, atol=1e-13)
    # the figure's exact discrepancies are those of the fresh predictions
    r = predict(ds.X, ds.y, ds.X_test, N=QUICK.N, chi=res["chis"][-1], kappa=QUICK.kappa, method="exact")
    disc = float(np.sqrt(np.mean((ds.y - np.array(r["train_mean"])) ** 2)))
    assert res["rows"]["exact"]["disc_train"][-1] == pytest.approx(disc, rel=1e-12)


def test_run_rejects_bad_activation(capsys, tmp_path):
    assert console.main(["run", "--quick", "--activation", "relu", "--out", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_quick_run_numbers_unchanged_by_the_redesign(quick_run):
    """Deterministic entries within 1e-12 of commit 06cb2ef's, sampled ones within their MCSE."""
    import numbers_guard

    _, out = quick_run
    res = json.loads((out / "results.json").read_text())
    numbers_guard.compare_run(res, numbers_guard.reference("run_quick_06cb2ef.json"))
