"""Kernel field one loop, structured path (THEORY §2c; `--method adaptive --order 2`):
fast path = dense P^2 x P^2 reference, and convergence to the exact posterior mean like N^-2."""
import numpy as np
import pytest

from kernelfield_dense import DenseKernelField
from msat.runtime import data, exact, spectral
from msat.runtime.kernelfield import KernelField
from msat.runtime.predict import predict


@pytest.mark.parametrize("P,N,chi", [(6, 60, 1.0), (8, 100, 100.0), (12, 300, 30.0)])
def test_fast_path_equals_dense_reference(P, N, chi):
    ds = data.builtin("ising", P=P, D=2 * P, P_test=3, seed=1)
    K = ds.X @ ds.X.T / (2 * P)
    dense = DenseKernelField(K, ds.y, N, chi, 0.5, 1.0)
    Cd = dense.saddle(K.copy())
    m1d, m0d = dense.one_loop_train_mean(Cd)
    fast = KernelField(K, ds.y, N, chi, 0.5, 1.0)
    C, _ = fast.saddle(K.copy())
    m1, m0 = fast.one_loop(C)
    np.testing.assert_allclose(C, Cd, atol=1e-12)
    np.testing.assert_allclose(m1, m1d, atol=1e-12)
    assert np.max(np.abs(m1 - m0)) > 1e-4  # the loop term is not trivially zero here


@pytest.mark.parametrize("P", [8, 12])
@pytest.mark.parametrize("regime", ["chi=1", "chi=N"])
def test_order_two_converges_like_n_minus_two_and_beats_the_nngp(P, regime):
    ds = data.builtin("ising", P=P, D=2 * P, P_test=4, seed=0)
    spec = spectral.spectrum(ds.X, ds.y, ds.X_test, 1.0)
    Ns = [100, 200, 400, 800]
    errs, errs_nngp = [], []
    for N in Ns:
        chi = 1.0 if regime == "chi=1" else float(N)
        ex = exact.moments(spec, N, chi, 0.5, 1.0)
        r = predict(ds.X, ds.y, ds.X_test, N=N, chi=chi, kappa=0.5, method="adaptive", order=2)
        nn = predict(ds.X, ds.y, ds.X_test, N=N, chi=chi, kappa=0.5, method="nngp")
        err = max(np.max(np.abs(np.array(r[k]) - ex[k])) for k in ("train_mean", "test_mean"))
        err_nn = max(np.max(np.abs(np.array(nn[k]) - ex[k])) for k in ("train_mean", "test_mean"))
        assert err < err_nn, (N, err, err_nn)
        errs.append(err)
    slope = np.polyfit(np.log(Ns), np.log(errs), 1)[0]
    assert slope <= -1.8, (slope, errs)


def test_statement_2_extended_order_two_converges_where_orders_zero_and_one_do_not_help():
    """chi = 1: 2b orders 0 and 1 are no better than the NNGP; order 2 converges (THEORY §2c)."""
    ds = data.builtin("ising", P=10, D=20, P_test=4, seed=2)
    spec = spectral.spectrum(ds.X, ds.y, ds.X_test, 1.0)
    rows = []
    for N in (100, 400):
        ex = exact.moments(spec, N, 1.0, 0.5, 1.0)["train_mean"]
        errs = [np.max(np.abs(np.array(predict(ds.X, ds.y, None, N=N, chi=1.0, kappa=0.5, method=m, order=o)["train_mean"]) - ex))
                for m, o in (("nngp", 1), ("adaptive", 0), ("adaptive", 1), ("adaptive", 2))]
        rows.append(errs)
        nngp, o0, o1, o2 = errs
        assert o0 > 0.5 * nngp and o1 > 0.5 * nngp  # no better than the NNGP
        assert o2 < nngp / 10
    assert rows[1][3] < rows[0][3] / 8  # order 2 converges (~ N^-2)
