"""Wishart-field one loop, structured path (docs/theory.md §2c; `--method adaptive --order 2`): fast path =
dense n^2 x n^2 reference for the kernel field and the weight field, and convergence to the exact
posterior mean like N^-2 (P < D through the kernel field, P >= D through the weight field)."""
import json

import numpy as np
import pytest

from kernelfield_dense import DenseField
from msat.runtime import data, spectral
from msat.runtime.app import console
from msat.runtime.methods import exact
from msat.runtime.numerics.wishart import WishartField
from msat.runtime import predict


@pytest.mark.parametrize("P,N,chi", [(6, 60, 1.0), (8, 100, 100.0), (12, 300, 30.0)])
def test_kernel_field_fast_path_equals_dense_reference(P, N, chi):
    ds = data.builtin("ising", P=P, D=2 * P, P_test=3, seed=1)
    K = ds.X @ ds.X.T / (2 * P)
    dense = DenseField.kernel(K, ds.y, N, chi, 0.5, 1.0)
    Cd = dense.saddle(K.copy())
    m1d, m0d = dense.one_loop_readout(Cd)
    fast = WishartField.kernel(K, ds.y, N, chi, 0.5, 1.0)
    C, _ = fast.saddle(K.copy())
    m1, m0 = fast.one_loop(C)
    np.testing.assert_allclose(C, Cd, atol=1e-12)
    np.testing.assert_allclose(fast.outputs(m1, None, np.zeros((P, 0)))[0], m1d, atol=1e-12)
    assert np.max(np.abs(m1 - m0)) > 1e-4  # the loop term is not trivially zero here


@pytest.mark.parametrize("P,D,N,chi", [(20, 6, 40, 1.0), (30, 10, 200, 200.0), (12, 12, 100, 10.0), (6, 9, 50, 3.0)])
def test_weight_field_fast_path_equals_dense_reference(P, D, N, chi):
    ds = data.builtin("teacher", P=P, D=D, P_test=3, seed=2)
    dense = DenseField.weights(ds.X, ds.y, N, chi, 0.3, 1.2, 0.8)
    fast = WishartField.weights(ds.X, ds.y, N, chi, 0.3, 1.2, 0.8)
    F0 = 0.8 / D * np.eye(D)
    Fd = dense.saddle(F0.copy())
    b1d, b0d = dense.one_loop_readout(Fd)
    F, _ = fast.saddle(F0.copy())
    b1, b0 = fast.one_loop(F)
    np.testing.assert_allclose(F, Fd, atol=1e-12)
    np.testing.assert_allclose(b1, b1d, atol=1e-12)
    assert np.max(np.abs(b1 - b0)) > 1e-5


@pytest.mark.slow
def test_kernel_and_weight_fields_agree_to_their_own_accuracy():
    """P < D: both fields are exact representations; their one-loop means differ at O(N^-2) only."""
    ds = data.builtin("ising", P=6, D=9, P_test=3, seed=3)
    K = ds.X @ ds.X.T / 9
    gaps = []
    for N in (100, 400):
        kf = WishartField.kernel(K, ds.y, N, 1.0, 0.5, 1.0)
        wf = WishartField.weights(ds.X, ds.y, N, 1.0, 0.5, 1.0, 1.0)
        mk = kf.outputs(kf.one_loop(kf.saddle(K.copy())[0])[0], None, np.zeros((len(ds.y), 0)))[0]
        mw = wf.outputs(wf.one_loop(wf.saddle(wf.start_from_kernel(K))[0])[0], np.zeros((0, 9)), None)[0]
        gaps.append(np.max(np.abs(mk - mw)))
    assert gaps[1] < gaps[0] / 10  # ~ N^-2 (16x for 4x N)
    assert gaps[0] < 1e-3


NS = [100, 200, 400, 800]


def _against_exact(P, D, regime):
    """(N, exact moments, predict at that point) along NS on the Ising task, chi = 1 or chi = N, kappa = 0.5."""
    ds = data.builtin("ising", P=P, D=D, P_test=4, seed=0)
    spec = spectral.spectrum(ds.X, ds.y, ds.X_test, 1.0)
    for N in NS:
        chi = 1.0 if regime == "chi=1" else float(N)
        yield N, exact.moments(spec, N, chi, 0.5, 1.0), (
            lambda N=N, chi=chi, **kw: predict(ds.X, ds.y, ds.X_test, N=N, chi=chi, kappa=0.5, **kw))


@pytest.mark.slow
@pytest.mark.parametrize("P,D", [(8, 16), (12, 24), (16, 8)])  # kernel, kernel, weight field
@pytest.mark.parametrize("regime", ["chi=1", "chi=N"])
def test_order_two_converges_like_n_minus_two_and_beats_the_nngp(P, D, regime):
    Ns = NS
    errs = []
    for N, ex, run in _against_exact(P, D, regime):
        r = run(method="adaptive", order=2)
        nn = run(method="nngp")
        err = max(np.max(np.abs(np.array(r[k]) - ex[k])) for k in ("train_mean", "test_mean"))
        err_nn = max(np.max(np.abs(np.array(nn[k]) - ex[k])) for k in ("train_mean", "test_mean"))
        assert err < err_nn, (N, err, err_nn)
        errs.append(err)
    slope = np.polyfit(np.log(Ns), np.log(errs), 1)[0]
    assert slope <= -1.8, (slope, errs)


@pytest.mark.slow
def test_statement_2_extended_order_two_converges_where_orders_zero_and_one_do_not_help():
    """chi = 1: 2b orders 0 and 1 are no better than the NNGP; order 2 converges (docs/theory.md §2c)."""
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


def test_order_two_field_size_limit_exits_2(tmp_path, capsys):
    ds = data.builtin("teacher", P=20, D=8, P_test=2, seed=0)
    path = tmp_path / "d.npz"
    np.savez(path, X=ds.X, y=ds.y)
    base = ["predict", "--data", str(path), "--chi", "1", "--kappa", "0.5", "--method", "adaptive", "--order", "2"]
    assert console.main(base + ["--N", "9"]) == 2  # weight field 8 x 8 needs N > 9
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "N > D + 1" in err
    assert console.main(base + ["--N", "10"]) == 0
    r = json.loads(capsys.readouterr().out)  # one chi: one JSON object
    assert r["observables"]["field"] == "weights (8 x 8)" and len(r["train_mean"]) == 20
    assert r["observables"]["loop_correction_mcse"] == 0.0  # the contract's key; the loop here has no Monte Carlo


@pytest.mark.parametrize("P,D", [(9, 4), (4, 9)])
def test_kernel_spectrum_without_forming_c_equals_the_dense_kernel(P, D):
    from msat.runtime.numerics.observe import alignment_of, kernel_target_alignment

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((P, D)), rng.standard_normal(P)
    field = WishartField.for_data(X, y, 50, 1.0, 0.5, 1.0, 1.0)
    B = rng.standard_normal((field.n, field.n))
    F = B @ B.T / field.n + 0.1 * np.eye(field.n)
    C = F if field.Phi is None else X @ F @ X.T
    ev, yCy = field.kernel_spectrum(F)
    dense = np.sort(np.linalg.eigvalsh(C))[::-1][:len(ev)]
    np.testing.assert_allclose(ev, dense, rtol=1e-10)
    assert kernel_target_alignment(yCy, y @ y, np.linalg.norm(ev)) == pytest.approx(alignment_of(y, C), rel=1e-10)


@pytest.mark.parametrize("field,chi", [("kernel", 1.0), ("kernel", 60.0), ("weights", 1.0), ("weights", 60.0)])
def test_test_variance_fast_path_equals_dense_reference(field, chi):
    """The test variance's one loop (variance given the field, its loop terms and the test mean's variance over
    the field; docs/theory.md §2c) equals the dense reference's hand-written derivatives, kernel field with
    s2 = k** - k*^T K^-1 k* > 0 and weight field alike."""
    P, D, N, g_w = (6, 12, 60, 1.0) if field == "kernel" else (12, 5, 60, 0.8)
    ds = data.builtin("teacher", P=P, D=D, P_test=3, seed=4)
    if field == "kernel":
        K, kstar, kss = spectral.linear_kernels(ds.X, ds.X_test, g_w)
        dense, fast = DenseField.kernel(K, ds.y, N, chi, 0.4, 1.1), WishartField.kernel(K, ds.y, N, chi, 0.4, 1.1)
        F0 = K.copy()
    else:
        kstar = kss = None
        dense = DenseField.weights(ds.X, ds.y, N, chi, 0.4, 1.1, g_w)
        fast = WishartField.weights(ds.X, ds.y, N, chi, 0.4, 1.1, g_w)
        F0 = g_w / D * np.eye(D)
    F, _ = fast.saddle(F0)
    p, s2 = fast.test_covectors(ds.X_test, kstar, kss)
    v1, v0 = fast.test_variance(fast.loop(F), p, s2, N)
    ref = np.array([dense.one_loop_test_variance(dense.saddle(F0), p[:, t], s2[t], N) for t in range(3)])
    np.testing.assert_allclose(v0, ref[:, 1], rtol=1e-11)
    np.testing.assert_allclose(v1, ref[:, 0], rtol=1e-11)
    assert np.min(np.abs(v1 / v0 - 1)) > 1e-3  # the loop terms are not trivially zero here
    if field == "kernel":
        assert np.min(s2) > 1e-2  # the test features' own variance given the training ones enters


@pytest.mark.slow
@pytest.mark.parametrize("P,D", [(8, 16), (16, 8)])  # kernel field, weight field
@pytest.mark.parametrize("regime", ["chi=1", "chi=N"])
def test_order_two_test_variance_converges_like_n_minus_two(P, D, regime):
    """Against the exact integral: order 2's test variance (docs/theory.md §2c) errs like N^-2 at chi = 1 and at
    chi = N, where order 1 misses the test mean's variance over the kernel (an O(1) part of the variance there)."""
    Ns = NS
    errs = []
    for N, moments, run in _against_exact(P, D, regime):
        ex = moments["test_var"]
        r2 = run(method="adaptive", order=2)
        r1 = run(method="adaptive", order=1)
        err, err1 = np.max(np.abs(r2.test_var - ex)), np.max(np.abs(r1.test_var - ex))
        assert err < err1 / 3, (N, err, err1)
        errs.append(err)
        if regime == "chi=N":
            assert np.max(np.abs(r1.test_var / ex - 1)) > 0.15  # order 1's missing part
            assert np.max(np.abs(r2.test_var / ex - 1)) < 0.01
            assert not [w for w in r2.warnings if "leaves out the kernel" in w]
    slope = np.polyfit(np.log(Ns), np.log(errs), 1)[0]
    assert slope <= -1.8, (slope, errs)


@pytest.mark.slow
def test_kernel_and_weight_fields_give_one_test_variance_to_their_own_accuracy():
    """P < D: both fields are exact representations; the kernel field's test variance rests on s2 (the test
    features given the training ones), the weight field's on none; they differ at O(N^-2) only."""
    ds = data.builtin("ising", P=6, D=9, P_test=3, seed=3)
    K, kstar, kss = spectral.linear_kernels(ds.X, ds.X_test, 1.0)
    gaps, rel = [], []
    for N in (100, 400):
        kf = WishartField.kernel(K, ds.y, N, float(N), 0.5, 1.0)
        wf = WishartField.weights(ds.X, ds.y, N, float(N), 0.5, 1.0, 1.0)
        vk = kf.test_variance(kf.loop(kf.saddle(K.copy())[0]), *kf.test_covectors(ds.X_test, kstar, kss), N)[0]
        vw = wf.test_variance(wf.loop(wf.saddle(wf.start_from_kernel(K))[0]), *wf.test_covectors(ds.X_test), N)[0]
        gaps.append(np.max(np.abs(vk - vw)))
        rel.append(np.max(np.abs(vk / vw - 1)))
    assert gaps[1] < gaps[0] / 10, gaps  # ~ N^-2 (16x for 4x N); relative to a variance ~ 1/N at chi = N, ~ 1/N
    assert rel[0] < 2e-2 and rel[1] < rel[0] / 3, rel


def test_the_weight_field_lives_on_the_rows_of_x_so_equal_kernels_give_equal_order_two():
    """Inputs of rank r < D (repeated columns, zero columns, dependent inputs) used the D x D weight field,
    whose loop error is that of n = D: duplicating every column (X -> [X, X], the same kernel and posterior)
    moved order 2 by more than order 1's error at N = 20. The field lives on the rows of X (r x r, the
    same integral): equal kernels now give equal order 2, and test points outside the rows of X keep the
    prior's variance there. Against the exact posterior: order 2 converges like N^-2 with test points
    outside X's rows, and adding one does not move the training means."""
    rng = np.random.default_rng(15)
    X = rng.standard_normal((8, 5))
    y = np.sign(X[:, 0] + 0.3 * rng.standard_normal(8))
    Xt = rng.standard_normal((3, 5))
    base = predict(X, y, Xt, N=20, chi=1, kappa=0.5, method="adaptive", order=2)
    twice = predict(np.hstack([X, X]), y, np.hstack([Xt, Xt]), N=20, chi=1, kappa=0.5, method="adaptive", order=2)
    padded = predict(np.hstack([X, np.zeros((8, 7))]), y, np.hstack([Xt, np.zeros((3, 7))]), N=20, chi=6,
                     kappa=0.5, g_w=12 / 5, method="adaptive", order=2)
    at6 = predict(X, y, Xt, N=20, chi=6, kappa=0.5, method="adaptive", order=2)
    assert twice.observables["field"] == "weights (5 x 5)"
    for a, b in ((base, twice), (at6, padded)):
        for k in ("train_mean", "test_mean", "test_var"):
            np.testing.assert_allclose(b[k], a[k], rtol=0, atol=1e-12)
    # rank 5 in D = 10 with test points that X's rows do not span
    A, B = rng.standard_normal((8, 5)), rng.standard_normal((5, 10))
    X, Xt = A @ B / np.sqrt(5), rng.standard_normal((3, 10))
    y = np.sign(X[:, 0])
    errs, errs1 = [], []
    for N in (40, 80, 160):
        ex = predict(X, y, Xt, N=N, chi=1, kappa=0.5, method="exact")
        r = predict(X, y, Xt, N=N, chi=1, kappa=0.5, method="adaptive", order=2)
        r1 = predict(X, y, Xt, N=N, chi=1, kappa=0.5, method="adaptive", order=1)
        errs.append(max(np.max(np.abs(np.subtract(r[k], ex[k]))) for k in ("train_mean", "test_mean", "test_var")))
        errs1.append(max(np.max(np.abs(np.subtract(r1[k], ex[k]))) for k in ("train_mean", "test_mean", "test_var")))
    slope = np.polyfit(np.log([40, 80, 160]), np.log(errs), 1)[0]
    assert slope < -1.8 and errs[-1] < errs1[-1] / 20, (errs, errs1)
    more = predict(X, y, np.vstack([Xt, rng.standard_normal((2, 10))]), N=160, chi=1, kappa=0.5,
                   method="adaptive", order=2)
    np.testing.assert_allclose(more.train_mean, r.train_mean, rtol=0, atol=1e-14)
    np.testing.assert_allclose(more.test_var[:3], r.test_var, rtol=0, atol=1e-14)
