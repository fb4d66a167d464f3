"""Randomised quasi-Monte Carlo normals (numerics.normals; docs/theory.md §6): against a closed-form
Gaussian expectation of erf features, sets drawn with different seeds are unbiased (their spread a
fair error) and several times more accurate than independent draws of the same size."""
import math

import numpy as np

from msat.runtime.numerics.normals import SOBOL_MAX_DIMENSION, standard_normals


def _erf_pair_mean(Z, a, b):
    return float(np.mean(np.vectorize(math.erf)(Z @ a) * np.vectorize(math.erf)(Z @ b)))


def test_scrambled_sobol_normals_are_unbiased_and_beat_independent_draws():
    """E[erf(a.z) erf(b.z)] = (2/pi) arcsin(2 a.b / sqrt((1 + 2|a|^2)(1 + 2|b|^2))) for z ~ N(0, I)."""
    D, M, R = 12, 2048, 24
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(D) / math.sqrt(D), rng.standard_normal(D) / math.sqrt(D)
    exact = 2 / math.pi * math.asin(2 * a @ b / math.sqrt((1 + 2 * a @ a) * (1 + 2 * b @ b)))
    qmc = np.array([_erf_pair_mean(standard_normals(100 + r, M, D), a, b) for r in range(R)])
    iid = np.array([_erf_pair_mean(rng.standard_normal((M, D)), a, b) for r in range(R)])
    # unbiased: the mean over independent scramblings is within 4 standard errors of the exact value
    assert abs(qmc.mean() - exact) < 4 * qmc.std(ddof=1) / math.sqrt(R)
    assert abs(iid.mean() - exact) < 4 * iid.std(ddof=1) / math.sqrt(R)
    # more accurate per set: the RMS error of one set is several times smaller
    rms = lambda e: float(np.sqrt(np.mean((e - exact) ** 2)))  # noqa: E731
    assert rms(qmc) < rms(iid) / 3, (rms(qmc), rms(iid))


def test_a_seed_fixes_the_scrambling():
    Z1, Z2, Z3 = standard_normals(7, 256, 5), standard_normals(7, 256, 5), standard_normals(8, 256, 5)
    assert np.array_equal(Z1, Z2) and np.all(np.isfinite(Z1)) and not np.any(Z1 == Z3)


def test_beyond_the_sobol_dimensions_the_draws_are_pseudo_random():
    Z = standard_normals(0, 3, SOBOL_MAX_DIMENSION + 1)
    assert Z.shape == (3, SOBOL_MAX_DIMENSION + 1) and abs(Z.std() - 1) < 0.01
