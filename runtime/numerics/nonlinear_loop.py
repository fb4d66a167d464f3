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
    correction's Monte Carlo error is under MCSE_FRACTION of the correction."""
    P, Q = X.shape[0], X_test.shape[0]
    coords = Coordinates(P, Q)
    M = int(draws or default_draws(coords))
    X_all = np.ascontiguousarray(np.vstack([X, X_test]), dtype=float)
    for attempt in range(1 if draws else DOUBLINGS + 1):
        out = _estimate(X_all, P, y, C, Cs, Ct, N, chi, kappa, g_v, g_w, activation, M, seed + attempt, coords)
        size = max(float(np.max(np.abs(out.train))), float(np.max(np.abs(out.test), initial=0.0)))
        error = max(float(np.max(out.train_mcse)), float(np.max(out.test_mcse, initial=0.0)))
        if error <= MCSE_FRACTION * size:
            break
        M *= 2
    return out


def _estimate(X_all, P, y, C, Cs, Ct, N, chi, kappa, g_v, g_w, activation, M, seed, coords):
    feats, weights, corrs = [], [], []
    how, frac = "", 1.0
    for r in range(REPLICATES):
        F, w, how, frac = tilted_draws(X_all, P, Ct, g_w, activation, M, seed + 7919 * (r + 1))
        feats.append(F)
        weights.append(w / w.sum())
        _, _, (ct, cs) = loop_means(C, Cs, y, kappa, g_v, chi, N, MonteCarloCumulants(F, w, coords), coords)
        corrs.append(np.concatenate([ct, cs]))
    union = MonteCarloCumulants(np.vstack(feats), np.concatenate(weights), coords)
    _, _, (ct, cs) = loop_means(C, Cs, y, kappa, g_v, chi, N, union, coords)
    point = np.concatenate([ct, cs])
    reps = np.array(corrs)
    mcse = reps.std(axis=0, ddof=1) / math.sqrt(REPLICATES)
    bias = float(np.max(np.abs(point - reps.mean(axis=0)))) / (REPLICATES - 1)
    return LoopCorrection(point[:P], point[P:], mcse[:P], mcse[P:], bias, how, frac, coords.d, len(union.w))
