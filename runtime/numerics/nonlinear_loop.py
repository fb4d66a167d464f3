"""Order 2 for erf and relu (docs/theory.md §2e): the kernel field's one loop on top of §2b's order-1
saddle, with Monte Carlo cumulants of the tilted neuron law (numerics.field_cumulants) and the
generated loop formula (numerics.field_loop). The correction's Monte Carlo error comes from R
independent draw sets; the point estimate uses their union (R times the draws, so the d/M bias of
inverting a sample covariance is R times smaller), and the difference between the union and the
replicates' mean estimates what that bias still is."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .field_cumulants import MonteCarloCumulants, tilted_draws
from .field_loop import Coordinates, loop_means

#: independent draw sets for the Monte Carlo error of the correction
REPLICATES = 4


@dataclass
class LoopCorrection:
    train: np.ndarray
    test: np.ndarray
    train_mcse: np.ndarray
    test_mcse: np.ndarray
    bias: float  # estimated remaining d/M bias (largest over outputs)
    draws: str
    effective_fraction: float
    dimension: int
    n_draws: int  # draws behind the point estimate (all sets)


def default_draws(coords: Coordinates) -> int:
    """Draws per replicate to start from: several times the d coordinates (the inverse of W'' is
    biased ~ d/M; the estimate below says how much of that is left)."""
    return int(max(20000, 10 * coords.d))


#: the correction's Monte Carlo error is driven below this fraction of the correction ...
MCSE_FRACTION = 0.1
#: ... by doubling the draws at most this many times
DOUBLINGS = 3


def loop_correction(X, X_test, y, C, Cs, Ct, N, chi, kappa, g_v, g_w, activation, draws=None, seed=0):
    """The one-loop correction of the train and test means at the order-1 saddle (C, Cs, Ct). Without
    `draws`, the draws per set start at default_draws and double (up to DOUBLINGS times) until the
    correction's Monte Carlo error is under MCSE_FRACTION of the correction. A doubling keeps the draws
    it has (and their pooled second cumulant) and adds as many fresh ones to each set; only the third
    cumulant, whose direction moves with the second, passes over all of them again."""
    P, Q = X.shape[0], X_test.shape[0]
    coords = Coordinates(P, Q)
    M = int(draws or default_draws(coords))
    X_all = np.ascontiguousarray(np.vstack([X, X_test]), dtype=float)
    args = (C, Cs, y, kappa, g_v, chi, N)
    sets, attempts = None, 1 if draws else DOUBLINGS + 1
    for attempt in range(attempts):
        sets, reps, how, frac = _replicates(X_all, P, Ct, g_w, activation, M, seed + attempt, coords, args, sets)
        mcse = reps.std(axis=0, ddof=1) / math.sqrt(REPLICATES)
        if np.max(mcse) <= MCSE_FRACTION * np.max(np.abs(reps.mean(axis=0))) or attempt == attempts - 1:
            break
        M = sets[0].n_draws  # as many fresh draws as each set holds: the draws per set double
    # the point estimate from all sets together (its W2 pooled from theirs: only W3 passes over the draws)
    union = MonteCarloCumulants.union(sets)
    _, _, (ct, cs) = loop_means(*args, union, coords)
    point = np.concatenate([ct, cs])
    bias = float(np.max(np.abs(point - reps.mean(axis=0)))) / (REPLICATES - 1)
    return LoopCorrection(point[:P], point[P:], mcse[:P], mcse[P:], bias, how, frac, coords.d, union.n_draws)


def _replicates(X_all, P, Ct, g_w, activation, M, seed, coords, args, previous=None):
    """REPLICATES sets of M fresh draws each (every set joined to the same set of `previous`, equal
    shares, when given) and the correction from each: (sets, corrections (R x outputs), how, fraction)."""
    sets, corrs = [], []
    how, frac = "", 1.0
    for r in range(REPLICATES):
        F, w, how, frac = tilted_draws(X_all, P, Ct, g_w, activation, M, seed + 7919 * (r + 1))
        fresh = MonteCarloCumulants(F, w, coords)
        sets.append(MonteCarloCumulants.union([previous[r], fresh]) if previous else fresh)
        _, _, (ct, cs) = loop_means(*args, sets[-1], coords)
        corrs.append(np.concatenate([ct, cs]))
    return sets, np.array(corrs), how, frac
