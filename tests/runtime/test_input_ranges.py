"""The memory estimate charges each method what it allocates for many test points, and data files whose numbers
float64 cannot hold (long doubles beyond its range, cells below its smallest number) or whose separator is not a
comma exit 2 with one line."""
from __future__ import annotations

import numpy as np
import pytest

from msat.runtime import memory, params
from msat.runtime.app.console import main

P, D, P_TEST = 50, 5, 1_000_000


@pytest.mark.parametrize("method,order,activation", [("nngp", None, "linear"), ("loop", None, "linear"),
                                                     ("adaptive", 1, "linear"), ("nngp", None, "erf")])
def test_many_test_points_are_charged_rows_not_quadrature_nodes(method, order, activation, monkeypatch):
    """P = 50, D = 5, P_test = 1e6: measured peaks 0.33-1.0 GB; was charged 32 GB (1000 quadrature nodes x 4
    rows of P_test, which only the exact integral has) and refused with 'even P = 1 does not fit'."""
    monkeypatch.setattr(memory, "available", lambda: 4 * 10**9)
    p = params.build(P, D, P_TEST, N=10, kappa=0.5, method=method, order=order, activation=activation)
    assert memory.needed(p) < 3e9
    assert "P <= " in memory.what_fits(p)


def test_the_exact_integral_is_still_charged_its_quadrature_nodes(monkeypatch):
    p = params.build(P, D, 10, N=10, kappa=0.5, method="exact").replace(P_test=P_TEST)
    nodes = memory.exact_nodes(p)
    assert nodes >= 530  # the most nodes measured at N = 10
    assert memory.needed(p) >= nodes * 4 * P_TEST * memory.F8
    assert memory.exact_nodes(p.replace(widths=(1,))) >= 2964  # narrow layers take more nodes
    monkeypatch.setattr(memory, "available", lambda: 4 * 10**9)
    with pytest.raises(Exception, match="memory"):
        params.build(P, D, P_TEST, N=10, kappa=0.5, method="exact")


def _run(capsys, path):
    code = main(["predict", "--data", str(path), "--N", "10", "--chi", "2", "--kappa", "0.5", "--method", "nngp"])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def _arrays():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 3))
    return X, X[:, 0], rng.standard_normal((2, 3))


@pytest.mark.skipif(np.finfo(np.longdouble).maxexp <= 1024, reason="long double is float64 here")
def test_a_long_double_beyond_float64s_range_is_named_as_such_on_one_line(tmp_path, capsys):
    X, y, Xt = _arrays()
    X = X.astype(np.longdouble)
    X[1, 2] = np.longdouble("1e400")
    np.savez(tmp_path / "over.npz", X=X, y=y, X_test=Xt)
    code, lines = _run(capsys, tmp_path / "over.npz")
    assert code == 2 and len(lines) == 1, lines
    assert "beyond float64's range" in lines[0] and "1e+400" in lines[0] and "X[1, 2]" in lines[0]
    assert "inf" not in lines[0].replace("1e+400", "") and "Warning" not in lines[0]


@pytest.mark.skipif(np.finfo(np.longdouble).minexp >= -1022, reason="long double is float64 here")
def test_a_long_double_that_float64_reads_as_zero_is_refused(tmp_path, capsys):
    X, y, Xt = _arrays()
    y = y.astype(np.longdouble)
    y[3] = np.longdouble("1e-400")
    np.savez(tmp_path / "under.npz", X=X, y=y, X_test=Xt)
    code, lines = _run(capsys, tmp_path / "under.npz")
    assert code == 2 and len(lines) == 1, lines
    assert "read as 0" in lines[0] and "y[3]" in lines[0] and "1e-400" in lines[0]


def test_a_csv_cell_that_float64_reads_as_zero_is_refused_as_the_options_are(tmp_path, capsys):
    path = tmp_path / "under.csv"
    path.write_text("x1,x2,y\n0.5,1e-400,1\n-1,2,0.5\n0.25,0,-1\n")
    code, lines = _run(capsys, path)
    assert code == 2 and len(lines) == 1, lines
    assert "line 2" in lines[0] and "'x2'" in lines[0] and "1e-400" in lines[0] and "reads as 0" in lines[0]
    path.write_text("x1,x2,y\n0.5,0e-400,1\n-1,2,0.5\n0.25,0,-1\n")  # a zero is a zero
    assert _run(capsys, path)[0] == 0


def test_a_space_separated_csv_is_told_msat_reads_commas(tmp_path, capsys):
    path = tmp_path / "spaces.csv"
    path.write_text("x1 x2 y\n0.5 1 1\n-1 2 0.5\n")
    code, lines = _run(capsys, path)
    assert code == 2 and len(lines) == 1, lines
    assert "spaces" in lines[0] and "comma-separated" in lines[0]


def test_a_ladder_is_charged_every_point_it_holds(monkeypatch):
    """The methods other than exact hold every ladder point's test outputs at once; the check charged one point (a
    review: a 30-point loop ladder at P_test = 1e5 peaked at 1.1 GB against an estimate of 87 MB). Against the
    traced peak of a 20-point ladder, and a ladder that does not fit is refused though one point fits."""
    import tracemalloc
    import warnings

    from msat.runtime import predict

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 10))
    y, Xt = np.tanh(X[:, 0]), rng.normal(size=(20_000, 10))
    chis = list(np.geomspace(1, 50, 20))
    kw = dict(N=100, kappa=0.1, method="loop", order=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predict(X, y, Xt[:5], chi=chis[:2], **kw)  # the kernels compiled and loaded outside the trace
        tracemalloc.start()
        predict(X, y, Xt, chi=chis, **kw)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    p = params.build(60, 10, 20_000, n_chi=20, **kw)
    assert peak <= memory.needed(p, 20) <= 3 * peak
    monkeypatch.setattr(memory, "available", lambda: 2 * 10**9)
    params.build(P, D, P_TEST, n_chi=1, **kw)
    with pytest.raises(Exception, match="300 chi points"):
        params.build(P, D, P_TEST, n_chi=300, **kw)
