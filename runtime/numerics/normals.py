"""Standard normal draws for the Monte Carlo estimators of the tilted neuron law (docs/theory.md §6):
randomised quasi-Monte Carlo.

The points of a scrambled Sobol' sequence, mapped through the normal quantile, cover the space more
evenly than independent draws, so averages of smooth functions over them (the features of erf and relu
neurons, reweighted by a smooth tilt) have a smaller error than M^-1/2: at P = 40, chi = 1 the
seed-to-seed spread of erf's order-1 test means falls 1.7 times at the same draws (docs/theory.md §6).
Each seed scrambles afresh, so point sets drawn with different seeds are independent and each is
exactly distributed as the law it targets on average: means over a set are unbiased, and the spread
between sets is an honest Monte Carlo error. The spread within one set is not (its points are
deliberately not independent), which is why every estimator here takes its error from independent sets.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.special import ndtri
from scipy.stats import qmc

#: the largest dimension scipy's Sobol' direction numbers cover; beyond it the draws are pseudo-random
SOBOL_MAX_DIMENSION = 21201


def standard_normals(seed, M, D):
    """An M x D array whose rows are scrambled Sobol' points through the normal quantile (independent
    N(0, 1) draws where D exceeds SOBOL_MAX_DIMENSION); the seed (or a numpy Generator) fixes the
    scrambling."""
    rng = np.random.default_rng(seed)
    if not 0 < D <= SOBOL_MAX_DIMENSION:
        return rng.standard_normal((M, D))
    with warnings.catch_warnings():
        # the first M points of the sequence: a power of two balances best, any M stays unbiased
        warnings.simplefilter("ignore", UserWarning)
        U = qmc.Sobol(d=D, scramble=True, seed=rng).random(M)
    return ndtri(np.clip(U, 1e-300, None))  # a scrambled point is zero with probability ~0, never one
