"""The memory estimate charges each method what it allocates for many test points (the exact integral takes them
in blocks), and data files whose numbers float64 cannot hold (long doubles beyond its range, cells below its
smallest number) or whose separator is not a comma exit 2 with one line."""
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


def test_the_exact_integral_takes_many_test_points_in_blocks(monkeypatch):
    """The exact integral held every quadrature node's row of test outputs: P_test = 1e6 at N = 10 was charged
    530 nodes x 1e6 (over 9 GB) and refused with 4 GB free. It now evaluates blocks of test points, traced here
    under its charge at P_test = 3e5 (narrow layers, the most nodes), and a million test points are accepted."""
    import tracemalloc
    import warnings

    from msat.runtime import predict

    monkeypatch.setattr(memory, "available", lambda: 4 * 10**9)
    params.build(P, D, P_TEST, N=10, kappa=0.5, method="exact")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(P, D))
    y, Xt = np.tanh(X[:, 0]), rng.normal(size=(300_000, D))
    kw = dict(N=2, kappa=0.1, method="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predict(X, y, Xt[:5], chi=[1.0, 2.0], **kw)
        tracemalloc.start()
        predict(X, y, Xt, chi=[1.0, 2.0], **kw)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert memory.exact_nodes(params.build(P, D, 10, **kw)) * len(Xt) * 8 > 3 * peak  # what one block avoids
    assert peak <= memory.needed(params.build(P, D, len(Xt), n_chi=2, **kw), 2) <= 4 * peak


def test_blocks_of_test_points_move_no_number(monkeypatch):
    """The same exact integral with every test point at once and in blocks of a few (depths 1 and 2)."""
    from msat.runtime import predict
    from msat.runtime.numerics import observe

    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 6))
    y, Xt = np.tanh(X[:, 0]), rng.normal(size=(700, 6))
    for kw in (dict(N=5), dict(widths=[8, 3])):
        whole = predict(X, y, Xt, chi=[1.0, 4.0], kappa=0.05, method="exact", **kw)
        monkeypatch.setattr(observe, "TEST_BLOCK", 3000)  # a few test points per block at a few hundred nodes
        blocks = predict(X, y, Xt, chi=[1.0, 4.0], kappa=0.05, method="exact", **kw)
        monkeypatch.undo()
        for a, b in zip(whole, blocks):
            for key in ("train_mean", "test_mean", "test_var"):
                np.testing.assert_allclose(getattr(b, key), getattr(a, key), rtol=1e-13, atol=1e-15)


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
