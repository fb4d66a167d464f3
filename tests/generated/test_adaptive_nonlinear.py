"""generated/adaptive_nonlinear.py (docs/theory.md §2b, §6): the moments of the single-neuron law
from draws against NumPy means, and the cumulant moments against a finite difference of the
reweighted (tilted) draw mean, the definition they expand."""
import numpy as np

from msat import generated

gen = generated.nonlinear_adaptation()
RNG = np.random.default_rng(5)
M, P, Pt = 400, 4, 2
F, Ft = RNG.standard_normal((M, P)), RNG.standard_normal((M, Pt))


def test_empirical_moments_are_draw_means():
    C, Cs, css = gen.empirical_moments(F, Ft)
    np.testing.assert_allclose(C, np.mean(F[:, :, None] * F[:, None, :], axis=0), rtol=1e-12)
    np.testing.assert_allclose(Cs, np.mean(F[:, :, None] * Ft[:, None, :], axis=0), rtol=1e-12)
    np.testing.assert_allclose(css, np.mean(Ft**2, axis=0), rtol=1e-12)


def test_weighted_moments_are_weighted_draw_means():
    """The reweighted saddle's moments (no weighted copy of the draws; C by blocked syrk updates) against
    NumPy's weighted means, over more draws than one block of rows, with strided column slices of F."""
    rows = generated.blas_helpers().ROW_BLOCK + 300
    wide = RNG.standard_normal((rows, P + Pt + 3))
    Fa, Fs, Fv = wide[:, :P], wide[:, P:P + Pt], RNG.standard_normal((rows, Pt))
    w = RNG.random(rows)
    w[::7] = 0.0  # weights may vanish (draws outside a region)
    w /= w.sum()
    C, Cs, css = gen.weighted_moments(Fa, Fs, Fv, w)
    np.testing.assert_allclose(C, np.einsum("m,ma,mb->ab", w, Fa, Fa), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(C, C.T)
    np.testing.assert_allclose(Cs, np.einsum("m,ma,mt->at", w, Fa, Fs), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(css, w @ Fv**2, rtol=1e-12)
    assert C.shape == (P, P) and Cs.shape == (P, Pt) and css.shape == (Pt,)


def test_cumulant_moments_are_the_first_order_of_the_tilted_mean():
    B = RNG.standard_normal((P, P))
    Ct = 0.1 * (B + B.T)
    zero = (np.zeros((P, P)), np.zeros((P, Pt)), np.zeros(Pt))
    C1, Cs1, css1 = gen.cumulant_moments(F, Ft, Ct, *zero)
    q = np.einsum("ma,ab,mb->m", F, Ct, F)

    def tilted(eps):
        w = np.exp(eps * q)
        w /= w.sum()
        return (np.einsum("m,ma,mb->ab", w, F, F), np.einsum("m,ma,mt->at", w, F, Ft), w @ Ft**2)

    h = 1e-5
    for got, plus, minus in zip((C1, Cs1, css1), tilted(h), tilted(-h)):
        np.testing.assert_allclose(got, (plus - minus) / (2 * h), rtol=1e-7, atol=1e-9)
    K = np.eye(P)
    C, _, _ = gen.cumulant_moments(F, Ft, Ct, K, *zero[1:])
    np.testing.assert_allclose(C, K + C1, rtol=1e-14)
