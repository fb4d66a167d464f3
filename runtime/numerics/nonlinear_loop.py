"""Order 2 for erf and relu (docs/theory.md §2e): the kernel field's one loop on top of §2b's order-1
saddle, with Monte Carlo cumulants of the tilted neuron law (numerics.field_cumulants) and the
generated loop formula (numerics.field_loop). The correction's Monte Carlo error comes from R
independent draw sets; the point estimate uses their union. The loop never inverts the sample
covariance W'' (G = H W''), so the correction is a smooth function of sample moments and its bias is
O(1/M) with a small coefficient (no d/M of an inverted covariance); the difference between the union
and the replicates' mean estimates what it is."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .field_cumulants import MonteCarloCumulants, tilted_draws
from .field_loop import Coordinates, OneLoop

#: independent draw sets for the Monte Carlo error of the correction
REPLICATES = 4


@dataclass
class LoopCorrection:
    train: np.ndarray
    test: np.ndarray
    train_mcse: np.ndarray
    test_mcse: np.ndarray
    bias: float  # estimated remaining O(1/M) bias of the union (largest over outputs)
    draws: str
    effective_fraction: float
    dimension: int
    n_draws: int  # draws behind the point estimate (all sets)


def default_draws(coords: Coordinates) -> int:
    """Draws per replicate to start from: several times the d coordinates. The correction's bias is small
    at any M (W'' is never inverted); what these draws buy is its Monte Carlo error, which at P = 40,
    chi = 1 is most of order 2's error on the test means (docs/theory.md §2e)."""
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
        sets, how, frac = _draw_sets(X_all, P, Ct, g_w, activation, M, seed + attempt, coords, sets)
        point, reps = _corrections(sets, args, coords)
        mcse = reps.std(axis=0, ddof=1) / math.sqrt(REPLICATES)
        if np.max(mcse) <= MCSE_FRACTION * np.max(np.abs(reps.mean(axis=0))) or attempt == attempts - 1:
            break
        M = sets[0].n_draws  # as many fresh draws as each set holds: the draws per set double
    bias = float(np.max(np.abs(point - reps.mean(axis=0)))) / (REPLICATES - 1)
    n_draws = sum(c.n_draws for c in sets)
    return LoopCorrection(point[:P], point[P:], mcse[:P], mcse[P:], bias, how, frac, coords.d, n_draws)


def _draw_sets(X_all, P, Ct, g_w, activation, M, seed, coords, previous=None):
    """REPLICATES sets of M fresh draws each (every set joined to the same set of `previous`, equal
    shares, when given): (sets, how, effective fraction)."""
    sets, how, frac = [], "", 1.0
    for r in range(REPLICATES):
        F, w, how, frac = tilted_draws(X_all, P, Ct, g_w, activation, M, seed + 7919 * (r + 1))
        fresh = MonteCarloCumulants(F, w, coords)
        sets.append(MonteCarloCumulants.union([previous[r], fresh]) if previous else fresh)
    return sets, how, frac


def _corrections(sets, args, coords):
    """(the point estimate from all sets together, each set's own estimate (R x outputs)). The union's
    W'' is pooled from the sets'; W''' is contracted along the union's direction Y in one pass over
    every set, which gives the sets' contractions and, pooled exactly, the union's. The sets use the
    union's Y rather than their own: Y's Monte Carlo error moves the correction by a negligible part of
    its error (measured at P = 40: the sets' variance changes by 0.1% at chi = 1, 2% at chi = N;
    docs/theory.md §2e), and one pass over the draws is saved."""
    union = MonteCarloCumulants.union(sets)
    loop = OneLoop(*args, union.w2(), coords)
    w3_sets, w3_union = MonteCarloCumulants.pooled_w3(sets, union, loop.Y)
    point = np.concatenate(loop.finish(w3_union)[2])
    reps = [np.concatenate(OneLoop(*args, c.w2(), coords).finish(w3)[2]) for c, w3 in zip(sets, w3_sets)]
    return point, np.array(reps)
