"""Targets far above the prior's output scale (an outside audit): as y -> c y the posterior rescaling s grows like
c and the test variance tends to a limit independent of c (docs/theory.md §2a), but its terms, each ~ s, cancel.
A variance float64 cannot hold is a failed point, never a converged wrong one."""
import warnings

import numpy as np
import pytest

from msat.runtime import predict
from msat.runtime.errors import InputError


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 10))
    return X, X @ rng.normal(size=10) / 3, rng.normal(size=(4, 10))


def _point(X, y, Xt, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return predict(X, y, Xt, N=20, chi=[2.0], kappa=0.5, **kw)[0]


def test_exact_variances_hold_their_limit_or_are_refused(data):
    """y x 1e9 is at the limit (1e-4 from y x 1e6); y x 1e15 read 2.8 times off at exit 0, y x 1e30 negative."""
    X, y, Xt = data
    limit = _point(X, y * 1e6, Xt, method="exact").test_var
    assert np.allclose(_point(X, y * 1e9, Xt, method="exact").test_var, limit, rtol=1e-4)
    for c in (1e15, 1e30):
        r = _point(X, y * c, Xt, method="exact")
        assert (r.converged and np.allclose(r.test_var, limit, rtol=1e-2)) or (
            not r.converged and "round-off" in r.error), (c, r.converged, r.error)
    assert not _point(X, y * 1e15, Xt, method="exact").converged


def test_exact_says_what_round_off_its_variances_carry_below_refusal(data):
    """Below the 1% that refuses a point, exact's bound was silent (an outside audit: 3.2e-5 off at y x 1e9, P > D);
    past 1e-5 of a variance it now warns as the probes do, and its bound lies above the error (y x 1e12: bound
    3.9e-3, error 7e-4 against y x 1e6)."""
    X, y, Xt = data
    assert not any("round-off" in w for w in _point(X, y, Xt, method="exact").warnings)
    limit = _point(X, y * 1e6, Xt, method="exact").test_var
    r = _point(X, y * 1e12, Xt, method="exact")
    note = [w for w in r.warnings if "round-off" in w]
    assert r.converged and len(note) == 1
    share = float(note[0].split("up to ")[1].split(" ")[0])
    assert 1e-5 < np.max(np.abs(r.test_var / limit - 1)) < share < 1e-2


def test_the_refusals_remedy_works_as_it_says(data):
    """The refusal's advice, g_v and kappa both times c^2, is y / c (docs/theory.md §2a's symmetry): converged, and
    the same posterior in other units. It used to say "--g-v near the targets' variance", and g_v alone leaves kappa
    below the kernel's resolution (an audit, at chi = 1e20)."""
    X, y, Xt = data
    c = 1e15
    r = _point(X, y * c, Xt, method="exact")
    assert not r.converged and "--g-v and --kappa" in r.error, r.error
    ref = _point(X, y, Xt, method="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed = predict(X, y * c, Xt, N=20, chi=[2.0], kappa=0.5 * c**2, g_v=c**2, method="exact")[0]
    assert fixed.converged
    assert np.allclose(fixed.test_mean, c * np.asarray(ref.test_mean), rtol=1e-9)
    assert np.allclose(fixed.test_var, c**2 * np.asarray(ref.test_var), rtol=1e-9)
    with pytest.raises(InputError, match="kappa"):
        predict(X, y * c, Xt, N=20, chi=[2.0], kappa=0.5, g_v=c**2, method="exact")


def test_negative_variances_are_failed_points(data):
    """Linear kernel adaptation at y x 1e9 gave test variances down to -14.5, converged."""
    X, y, Xt = data
    assert _point(X, y, Xt, method="adaptive", order=1).converged
    r = _point(X, y * 1e9, Xt, method="adaptive", order=1)
    assert not r.converged and "negative" in r.error and "--g-v" in r.error, r.error


def test_arithmetic_failures_in_the_results_are_failed_points(data):
    """y x 1e70 (|y|^2/kappa ~ 1e142, inside the documented range): a ZeroDivisionError in the loop series'
    truncation check ended the run with an internal error (exit 1)."""
    X, y, Xt = data
    r = _point(X, y * 1e70, Xt, method="loop", order=1)
    assert not r.converged and "edge of float64" in r.error, r.error


def test_adaptive_measures_the_round_off_it_carries(data):
    """Linear kernel adaptation at y x 1e8 was 14% off its y-independent limit (1e-5 from it at y x 1e4), positive
    and converged; at 1e15 2e14 times off. The saddle solved again in other units (y/3, a symmetry) measures it:
    a warning past 1e-5 of the test variances, a point not converged past 1e-2; nothing at y x 1."""
    X, y, Xt = data
    limit = _point(X, y * 1e4, Xt, method="adaptive", order=1).test_var
    clean = _point(X, y, Xt, method="adaptive", order=1)
    assert clean.converged and not any("round-off" in w for w in clean.warnings)
    for c in (1e8, 1e15):
        r = _point(X, y * c, Xt, method="adaptive", order=1)
        assert np.max(np.abs(r.test_var / limit - 1)) > 0.1  # the loss is there ...
        assert not r.converged and "round-off" in r.error, (c, r.error)  # ... and said
    r = _point(X, y * 1e7, Xt, method="adaptive", order=1)
    assert r.converged and any("round-off" in w for w in r.warnings), r.warnings


def test_the_loop_holds_its_test_variances_far_above_the_prior_scale(data):
    """The order-0 variance is <m*^2> - <m*>^2, each ~ s^2: <m*> came from the series' coefficients through one
    product and <m*^2> from m*'s derivatives through another, which rounded apart. kappa = 1e-6, y x 1e4 (a
    review): loop order 1's test variances 25-50% off the exact integral's (then flagged by the probe); kappa = 1e-3,
    y x 1e5 and 1e6: 2.8% and 2.3 times off; kappa = 0.5, y x 1e8: negative. <m*> now comes from the same derivatives,
    the shared part cancels exactly, and all of these match exact, converged."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(10, 6))
    y = X @ rng.normal(size=6) / 3 + 0.1 * rng.normal(size=10)
    Xt = np.vstack([rng.normal(size=(2, 6)), X[:3]])
    X7, y7, Xt7 = data
    cases = [(X, y, Xt, 1e4, 1e-6, 1, 1e-4), (X7, y7, Xt7, 1e5, 1e-3, 1, 1e-6), (X7, y7, Xt7, 1e6, 1e-3, 1, 1e-5),
             (X7, y7, Xt7, 1e8, 0.5, 1, 1e-5), (X7, y7, Xt7, 1e9, 0.5, 2, 1e-5)]
    for X_, y_, Xt_, c, kappa, order, tol in cases:
        kw = dict(N=20, chi=[2.0], kappa=kappa)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ex = predict(X_, y_ * c, Xt_, method="exact", **kw)[0]
            r = predict(X_, y_ * c, Xt_, method="loop", order=order, **kw)[0]
        assert r.converged and ex.converged, (c, r.error)
        assert np.max(np.abs(r.test_var / ex.test_var - 1)) < tol, (c, kappa, r.test_var, ex.test_var)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = predict(X, y, Xt, N=20, chi=[2.0], kappa=1e-6, method="loop", order=1)[0]
    assert clean.converged and not any("round-off" in w for w in clean.warnings), clean.warnings


def test_the_loop_still_measures_the_round_off_it_carries(data):
    """Further out the probe (runtime.roundoff) still measures what float64 lost: kappa = 1e-3, y x 1e12 (the exact
    integral itself refuses there) is not converged, its values kept, naming round-off; y x 1e8 warns. At kappa = 0.5,
    y x 1e15 the series in the probe's units fails, and float64's precision of the terms (s^2 from order 1 on)
    stands in for the share."""
    X, y, Xt = data
    kw = dict(N=20, chi=[2.0], kappa=1e-3, method="loop", order=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        near, far = (predict(X, y * c, Xt, **kw)[0] for c in (1e8, 1e12))
        estimated = predict(X, y * 1e15, Xt, **{**kw, "kappa": 0.5})[0]
    assert near.converged and any("round-off" in w for w in near.warnings)
    assert not far.converged and far.has_values and "round-off" in far.error, far.error
    assert not estimated.converged and estimated.has_values and "estimated from float64" in estimated.error


def test_the_loops_test_means_equal_those_of_its_contracted_coefficients(data):
    """<m*> from m*'s derivatives (for the cancellation above) equals m* of the series' contracted coefficients, the
    route before, to round-off on ordinary targets (a second evaluation of the same sum)."""
    from msat.runtime.methods import loop
    from msat.runtime.numerics import observe
    from msat.runtime.spectral import spectrum

    X, y, Xt = data
    spec = spectrum(X, y, Xt, 1.0)
    s_star, chis = np.array([0.9, 1.7, 3.0]), [1.0, 5.0, 20.0]
    for order, dressed in ((1, False), (2, True), (3, False)):
        w = loop.weights(spec, 20, s_star, chis, 0.5, 1.0, order, dressed)
        got = loop.contract(spec, s_star, chis, 0.5, 1.0, order, w)["test_mean"]
        tab = observe.Tables(spec, s_star, chis, 0.5, 1.0, order)
        before = observe.test_mean(spec, np.einsum("ljn,jnk->ljk", np.transpose(w, (1, 0, 2)), tab.test))
        np.testing.assert_allclose(got, before, rtol=1e-12, atol=1e-14 * np.max(np.abs(before)))


def test_a_loop_variance_negative_by_round_off_is_not_blamed_on_the_1_over_n_expansion(data):
    """y x 1e8 to 1e14 made the loop's test variances +-256 and the like (the true ones ~1e-4, exact) and the
    failure said the expansion in 1/N does not hold at N = 20 (P/N = 1.5), where at y x 1 it does. Since the
    variance's shared part cancels exactly, negative variances come later (y x 1e10 to 1e16); they still fail naming
    float64's precision. A point whose series really leaves its expansion (N = 2, 3 at P = 12) still says so."""
    X, y, Xt = data
    for c, order, kappa in ((1e16, 1, 0.5), (1e16, 2, 0.5), (1e13, 1, 1e-3), (1e10, 1, 1e-6), (1e12, 0, 1e-6)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = predict(X, y * c, Xt, N=20, chi=[2.0], kappa=kappa, method="loop", order=order)[0]
        assert not r.has_values and "float64's precision" in r.error and "1/N" not in r.error, (c, order, r.error)
    assert _point(X, y, Xt, method="loop", order=2).converged
    rng = np.random.default_rng(0)
    X, Xt = rng.normal(size=(12, 5)), rng.normal(size=(3, 5))
    failed = [r for N in (1, 2, 3) for r in predict(X, np.tanh(X[:, 0]), Xt, N=N, chi=[1.0, float(N)], kappa=0.01,
                                                       method="loop", order=2) if not r.has_values]
    assert failed and all("expansion in 1/N does not hold" in r.error for r in failed)


def test_the_kernel_field_measures_the_round_off_it_carries(data):
    """Linear adaptive --order 2 (the kernel field's loop) at y x 1e15 gave test variances 42% off their limit,
    converged and silent; the probe of the loop series now measures it too, and where solving again in other units
    fails (as here) float64's precision of the terms stands in. Ordinary targets are not probed."""
    X, y, Xt = data
    limit = _point(X, y * 1e6, Xt, method="adaptive", order=2).test_var
    for c in (1.0, 1e3):
        assert not any("round-off" in w for w in _point(X, y * c, Xt, method="adaptive", order=2).warnings)
    for c in (1e13, 1e14, 1e15):
        r = _point(X, y * c, Xt, method="adaptive", order=2)
        error = float(np.max(np.abs(r.test_var / limit - 1)))
        flagged = any("round-off" in w for w in r.warnings) or not r.converged
        assert flagged and (r.converged or error > 1e-2 or r.diagnostics["roundoff"] > 1e-2), (c, error)
    assert not _point(X, y * 1e15, Xt, method="adaptive", order=2).converged
