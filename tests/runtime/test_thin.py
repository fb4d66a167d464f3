"""Linear networks with D < P work from the thin SVD of X (runtime.spectral, docs/theory.md §2a): every
method's results equal the P x P eigendecomposition's (the path for P <= D and for every other
activation) to 1e-10, and no P x P matrix is formed on the way."""
import tracemalloc

import numpy as np
import pytest

from msat.runtime import predict, spectral

P, D, P_TEST = 70, 12, 7
#: fields that are not results: wall time, how K was factorised, iteration counts, the exact
#: integral's quadrature centre (found to 1e-9, the integral itself does not depend on it)
SKIP = {"seconds", "basis", "newton_iterations", "iterations", "saddle_newton_iterations", "nodes",
        "quadrature_error"}


def _data(seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, D))
    X[:, -1] = X[:, 0] - X[:, 1]  # a rank-deficient X: one singular value is zero
    y = np.tanh(X[:, 0] + 0.5 * X[:, 2]) + 0.1 * rng.standard_normal(P)
    return X, y, rng.standard_normal((P_TEST, D))


def _leaves(d, path=""):
    if isinstance(d, dict):
        for k, v in d.items():
            if k not in SKIP:
                yield from _leaves(v, f"{path}.{k}")
    elif isinstance(d, (list, tuple)) and d and not isinstance(d[0], (int, float, type(None))):
        for i, v in enumerate(d):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, d


def _assert_same(thin, dense):
    a, b = dict(_leaves(thin.to_dict())), dict(_leaves(dense.to_dict()))
    if thin["method"] == "exact":
        a.pop(".saddle"), b.pop(".saddle")
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], str) or a[k] is None or isinstance(a[k], bool):
            assert a[k] == b[k], k
        else:
            np.testing.assert_allclose(np.asarray(a[k], float), np.asarray(b[k], float), rtol=1e-10, atol=1e-10,
                                       err_msg=k)


CASES = [
    dict(method="nngp"),
    dict(method="exact"),
    dict(method="loop", order=0),
    dict(method="loop", order=1),
    dict(method="loop", order=3),
    dict(method="loop", order=2, dressed=True),
    dict(method="adaptive", order=0),
    dict(method="adaptive", order=1),
    dict(method="adaptive", order=2),
    dict(method="exact", depth=2),
    dict(method="loop", order=2, depth=2),
    dict(method="adaptive", order=1, depth=2),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_thin_svd_path_equals_the_dense_path(case, monkeypatch):
    X, y, Xt = _data()
    run = lambda: predict(X, y, Xt, N=40, chi=[1.0, 6.3, 40.0], kappa=0.3, g_w=1.2, **case)  # noqa: E731
    thin = run()
    assert thin[0]["params"]["basis"] == spectral.THIN
    monkeypatch.setattr(spectral, "basis", lambda *_: spectral.DENSE)
    dense = run()
    for t, d in zip(thin, dense):
        assert t.converged and d.converged
        _assert_same(t, d)


@pytest.mark.parametrize("method,order", [("adaptive", 1), ("loop", 2)])
def test_targets_in_the_range_of_X(method, order, monkeypatch):
    """y = X w exactly: y's null-space part is round-off, and the aggregated zero mode must not
    turn it into a direction that is not orthogonal to the range (the rescaling fit reads it)."""
    X, _, Xt = _data()
    y = X @ np.linspace(-1.0, 1.0, D)
    run = lambda: predict(X, y, Xt, N=40, chi=[1.0, 40.0], kappa=0.3, method=method, order=order)  # noqa: E731
    thin = run()
    monkeypatch.setattr(spectral, "basis", lambda *_: spectral.DENSE)
    for t, d in zip(thin, run()):
        _assert_same(t, d)


def _peak_bytes(run):
    """Peak memory traced while run() runs (numpy reports its array buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        run()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("thin", [True, False], ids=["thin", "dense-control"])
def test_no_P_by_P_array_on_the_thin_path(thin, monkeypatch):
    """Loop ladder, exact integral, adaptive and NNGP at P = 3000, D = 5 stay far below one P x P array
    (72 MB); the P x P path, run as a control, does not."""
    rng = np.random.default_rng(0)
    Pbig = 3000
    X, Xt = rng.standard_normal((Pbig, 5)), rng.standard_normal((4, 5))
    y = X[:, 0] + 0.1 * rng.standard_normal(Pbig)
    if not thin:
        monkeypatch.setattr(spectral, "basis", lambda *_: spectral.DENSE)

    def run():
        for method, order in (("loop", 2), ("exact", None), ("adaptive", 1), ("nngp", None)):
            r = predict(X, y, Xt, N=50, chi=[1.0, 50.0], kappa=0.2, method=method, order=order)
            assert all(x.converged for x in r)

    run()  # kernels loaded and compiled outside the measurement
    peak = _peak_bytes(run)
    assert (peak < 8 * Pbig * Pbig / 10) == thin, peak
    if thin:  # one zero mode of multiplicity P - D holds the rest
        spec = spectral.spectrum(X, y, Xt, 1.0)
        assert spec.modes == 6 and spec.mult[-1] == Pbig - 5 and abs(spec.y2 - y @ y) <= 1e-9 * (y @ y)


@pytest.mark.parametrize("method,order,n_chi,P_test", [("exact", None, 1, 50), ("loop", 3, 1, 50), ("loop", 2, 20, 50),
                                                       ("adaptive", 1, 1, 50), ("nngp", None, 1, 50),
                                                       ("loop", 3, 200, 1000)])
def test_the_memory_estimate_bounds_the_thin_paths_peak_and_is_not_far_above_it(method, order, n_chi, P_test):
    """runtime.memory.needed against the traced peak at P = 40,000, D = 10: an upper bound, and within 8x of it.
    It charged every request as a 1000-point ladder of train means (1000 x 2P floats): 20x the peak of one
    chi point, so that an outside audit's 0.25 GB request at P = 3e5 was refused under a 4 GB limit. A long
    loop ladder with many test points keeps ~7L + 5 rows of test outputs per point (a review of the change)."""
    from msat.runtime import memory, params

    rng = np.random.default_rng(2)
    Pbig, Dn = 40_000, 10
    X, Xt = rng.standard_normal((Pbig, Dn)), rng.standard_normal((P_test, Dn))
    y = X[:, 0] + 0.1 * rng.standard_normal(Pbig)
    chis = list(np.geomspace(1.0, 50.0, n_chi))
    run = lambda: predict(X, y, Xt, N=50, chi=chis, kappa=0.2, method=method, order=order)  # noqa: E731
    run()
    peak = _peak_bytes(run)
    est = memory.needed(params.build(Pbig, Dn, P_test, N=50, kappa=0.2, method=method, order=order), n_chi)
    assert peak <= est <= 8 * peak, (peak, est)


def test_the_linear_sampler_holds_its_kernels_in_weight_space(monkeypatch):
    """With D < N < P a linear network's sampled feature kernels are never formed: the per-draw
    alignment comes from the N x N Gram matrix and the posterior mean kernel's from E[W^T W] (D x D);
    the same draws give the P x P route's observables to round-off."""
    from msat.runtime import sample

    X, y, Xt = _data()
    assert spectral.weights_hold_kernel("linear", P, D, 30)
    run = lambda: sample(X, y, Xt, N=30, chi=3.0, kappa=0.3, samples=40, chains=1, seed=4)  # noqa: E731
    weights = run()
    monkeypatch.setattr(spectral, "weights_hold_kernel", lambda *_: False)
    dense = run()
    np.testing.assert_array_equal(weights.train_mean, dense.train_mean)
    for key in ("kernel_alignment", "kernel_alignment_per_draw"):
        a, b = weights["observables"][key], dense["observables"][key]
        assert abs(a - b) <= 1e-12 * abs(b) and 0 < b < 1, (key, a, b)


@pytest.mark.parametrize("shape", [(70, 12, "thin"), (12, 70, "dense"), (12, 70, "thin")],
                         ids=["thin-zero-modes", "dense", "thin-wide"])
def test_retargeting_a_spectrum_equals_factorising_again(shape):
    """runtime.roundoff solves again with y / 3: spectral.retarget reuses the factorisation and must give the
    spectrum of the new targets bit for bit (the same operations on the same factor); thin-wide is the QR route
    that an ill-conditioned K with D >= P takes."""
    P_, D_, how = shape
    rng = np.random.default_rng(5)
    X, Xt = rng.standard_normal((P_, D_)), rng.standard_normal((4, D_))
    y = np.tanh(X[:, 0]) + 0.1 * rng.standard_normal(P_)
    if how == "thin":
        spec, fresh = spectral.thin(X, y, Xt, (1.3,)), spectral.thin(X, y / 3.0, Xt, (1.3,))
    else:
        spec, fresh = (spectral.spectrum(X, t, Xt, 1.3, basis_=spectral.DENSE) for t in (y, y / 3.0))
    assert spec.basis == (spectral.THIN if how == "thin" else spectral.DENSE)
    again = spectral.retarget(spec, y / 3.0)
    for f in ("lam", "U", "yt", "Kt", "kss", "mult", "u0"):
        a, b = getattr(again, f), getattr(fresh, f)
        assert (a is None and b is None) or np.array_equal(a, b), f


#: where the probe fires (tests/runtime/test_target_scale.py): (data seed, P, D, method, order, y x c, kappa)
PROBED = [(7, 30, 10, "loop", 1, 1e12, 1e-3), (7, 30, 10, "adaptive", 2, 1e13, 0.5)]


@pytest.mark.parametrize("case", PROBED, ids=["loop", "kernelfield"])
def test_the_round_off_probe_reuses_the_factorisation_and_moves_no_number(case, monkeypatch):
    """The probe of the loop series and the kernel field (runtime.roundoff) solved again with y / 3 by a new solver,
    which took a second SVD of X (0.6 s of a 1.6 s 200-point ladder at P = 2000, D = 1000, where the probe fires at
    the ten points nearest chi = N). It now reuses the solver's factorisation, and the probed results are the
    same as when it factorises again."""
    import copy
    import warnings

    from msat.runtime import ladder, methods, params as params_, roundoff
    from msat.runtime.data import validate

    seed, P_, D_, method, order, c, kappa = case
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(P_, D_))
    y, Xt = X @ rng.normal(size=D_) / 3, rng.normal(size=(4, D_))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = validate(X, y * c, Xt)
        p = params_.build(ds.P, ds.D, ds.P_test, N=20, kappa=kappa, method=method, order=order, n_chi=1)
        solver = methods.solver(ds, p)
        results = ladder.solve(solver, [2.0])
        calls = []
        real = spectral.thin
        monkeypatch.setattr(spectral, "thin", lambda *a, **k: calls.append(1) or real(*a, **k))
        reused = roundoff.probe(ds, p, copy.deepcopy(results), solver.spec)
        assert not calls  # the probe did not factorise X
        again = roundoff.probe(ds, p, copy.deepcopy(results))
        assert calls  # ... where it is not given the spectrum, it does
    assert any("round-off" in w for r in reused for w in r.warnings) or not all(r.converged for r in reused)
    for a, b in zip(reused, again):
        assert a.warnings == b.warnings and a.converged == b.converged
        assert a.error == b.error and a.diagnostics == b.diagnostics
        for k in ("train_mean", "test_mean", "test_var"):
            assert np.array_equal(getattr(a, k), getattr(b, k)), k
