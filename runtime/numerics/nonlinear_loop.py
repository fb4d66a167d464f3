"""Order 2 for erf and relu (docs/theory.md §2e): the kernel field's one loop on top of §2b's order-1
saddle, with Monte Carlo cumulants of the tilted neuron law (numerics.field_cumulants) and the
generated loop formula (numerics.field_loop). The correction's Monte Carlo error comes from R
independent draw sets (as many as order 1's, with which they are paired); the point estimate uses their
union. The loop never inverts the sample covariance W'' (G = H W''), so the correction is a smooth function
of sample moments and its bias is O(1/M) with a small coefficient (no d/M of an inverted covariance); the
difference between the union and the replicates' mean estimates what it is."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .replicates import REPLICATES
from .field_cumulants import MonteCarloCumulants, data_key, prior_reaches, reweighted_prior, tilted_draws, weight_tail
from .field_controls import CONTROL_MIN, PriorControlled, plain_cumulants, prior_cumulants
from ..errors import ConvergenceError
from .field_loop import Coordinates, OneLoop
from .proposal import TAIL_FINAL


@dataclass
class LoopCorrection:
    train: np.ndarray
    test: np.ndarray
    train_mcse: np.ndarray
    test_mcse: np.ndarray
    var: np.ndarray  # the test variances' correction: <v_t> - v_t plus the test means' variance over the field
    var_mcse: np.ndarray  # its Monte Carlo error at the given saddle
    total_mcse: dict | None  # order 1's outputs plus the loop's: their error, the saddle's noise included (pairs)
    bias: float  # estimated remaining O(1/M) bias of the union (largest over outputs)
    draws: str
    effective_fraction: float
    dimension: int
    n_draws: int  # draws behind the point estimate (all sets)


def first_draws(coords: Coordinates, mala=False, replicates=REPLICATES) -> int:
    """Draws per replicate set to start from (all sets together: max(16384, 8 dm), or max(80000, 40 dm) for
    MALA draws). The correction's bias is small at any M (W'' is never inverted; none shows from 2,048 to
    20,000 draws per set at P = 40, docs/theory.md §2e), so the draws are set by the correction's Monte Carlo
    error alone: start small, grow where it asks. MALA draws (where reweighted prior draws reach q poorly)
    pay their chains' tuning and burn-in at every growth and are correlated: they start where one set
    usually suffices."""
    return int(max(80000, 40 * coords.dm) if mala else max(16384, 8 * coords.dm)) // replicates


def most_draws(coords: Coordinates, replicates=REPLICATES) -> int:
    """The most draws per set the growth goes to (all sets together: 32 max(20000, 10 dm); runtime.memory
    budgets for them)."""
    return int(32 * max(20000, 10 * coords.dm)) // replicates


#: the correction's Monte Carlo error is driven below this fraction of the correction ...
MCSE_FRACTION = 0.1
#: ... by growing the draws at most this many times, each time to what the error's M^-1/2 law asks
#: for (with this margin), at least doubling them
GROWTHS = 2
MARGIN = 1.2


def loop_correction(X, X_test, y, C, Cs, Ct, N, chi, kappa, g_v, g_w, activation, draws=None, seed=0,
                    first=None, replicas=(), replicates=REPLICATES):
    """The one-loop correction of the train and test means and the test variances at the order-1 saddle
    (C, Cs, Ct). With `draws`, that many per set; otherwise the draws per set start at `first` (at least
    first_draws) and grow (up to GROWTHS times, to most_draws at most) until the correction's Monte Carlo
    error is under MCSE_FRACTION of the means' correction (the variances' come along). A growth keeps the
    draws each set has (and their pooled second cumulant, in proportion to the numbers of draws) and adds
    fresh ones; only the third cumulant, whose direction moves with the second, passes over all of them
    again. `replicas`: order 1's replicates solved alone, (C, C*, Ct, their outputs) each; each is paired with
    one of the `replicates` loop draw sets (its draws reweighted to the replicate's Ct) and the pairs' spread
    gives total_mcse."""
    P, Q = X.shape[0], X_test.shape[0]
    coords = Coordinates(P, Q)
    X_all = np.ascontiguousarray(np.vstack([X, X_test]), dtype=float)
    if not draws:  # which draws q gets: reweighted prior draws unless their weights are too uneven or heavy-tailed
        _, w, frac, _ = reweighted_prior(X_all, P, Ct, g_w, activation, 4096, seed)
        draws_first = max(first or 0, first_draws(coords, not prior_reaches(
            w, frac, TAIL_FINAL, lambda: weight_tail(X_all, P, Ct, g_w, activation)), replicates))
    M = int(draws or draws_first)
    most = max(M, most_draws(coords, replicates))
    args = (C, Cs, y, kappa, g_v, chi, N)
    sets, growths = None, 0 if draws else GROWTHS
    for attempt in range(growths + 1):
        sets, how, frac = _draw_sets(X_all, P, Ct, g_w, activation, M, seed, attempt, coords, sets, replicates)
        point, reps = _corrections(sets, args, coords)
        mcse = reps.std(axis=0, ddof=1) / math.sqrt(replicates)
        have = sets[0].n_draws
        means = slice(0, P + Q)
        target = MCSE_FRACTION * np.max(np.abs(reps[:, means].mean(axis=0)))
        excess = np.max(mcse[means]) / target if target > 0 else math.inf  # error / the error asked for
        if excess <= 1 or attempt == growths or have >= most:
            break
        M = int(math.ceil(min(float(most), have * max(2.0, MARGIN * excess ** 2)))) - have  # fresh, per set
    bias = float(np.max(np.abs(point[means] - reps[:, means].mean(axis=0)))) / (replicates - 1)
    n_draws = sum(c.n_draws for c in sets)
    tr, te, va = slice(0, P), slice(P, P + Q), slice(P + Q, None)
    total = _paired_errors(sets, replicas, args, coords, Ct)
    return LoopCorrection(point[tr], point[te], mcse[tr], mcse[te], point[va], mcse[va], total, bias, how, frac,
                          coords.d, n_draws)


#: order 2's outputs, in the order OneLoop.finish gives their corrections
OUTPUTS = ("train_mean", "test_mean", "test_var")


def _paired_errors(sets, replicas, args, coords, Ct):
    """The Monte Carlo error of order 2's outputs, saddle and loop together: replicate r of order 1 (1/R of
    its draws, solved alone) with loop draw set r (1/R of the loop's draws, reweighted from the union's Ct to
    the replicate's), so that the spread of o_r + <correction>_r over sqrt(R) is the union's error. The
    correction moves with the saddle's noise, which the loop's own replicates at a fixed saddle do not show:
    the test variances' correction is as large as order 1's variance at chi ~ N (measured, relu at chi = N:
    6-8 times their error), and the means' moves with order 1's means (relu at P = 40, chi = 4: the two
    errors in quadrature read 0.88 of the spread over seeds)."""
    if len(replicas) < 2 or len(replicas) > len(sets):
        return None
    P = coords.P
    out = []
    for c, (C_r, Cs_r, Ct_r, o_r) in zip(sets, replicas):
        cr = c.retilted(P, Ct_r - Ct)
        try:
            loop = OneLoop(C_r, Cs_r, *args[2:], cr.w2(), coords)
        except ConvergenceError:  # a replicate's field with a singular propagator: the pair is left out
            continue
        out.append([o_r[k] + d for k, d in zip(OUTPUTS, loop.finish(cr.w3(loop.Y))[2])])
    if len(out) < 2:
        return None
    return {k: np.std([o[i] for o in out], axis=0, ddof=1) / math.sqrt(len(out)) for i, k in enumerate(OUTPUTS)}


def _draw_sets(X_all, P, Ct, g_w, activation, M, seed, attempt, coords, previous, replicates):
    """`replicates` sets of M fresh draws each (every set joined to the same set of `previous`, shares in
    proportion to the numbers of draws, when given): (sets, how, effective fraction). Reweighted prior
    draws whose weights are nearly even take the prior's cumulants as a control variate, set r those of
    its own independent prior set (field_controls.PriorControlled)."""
    sets, how, frac = [], "", 1.0
    for r in range(replicates):
        seed_r = seed + attempt + 7919 * (r + 1)
        F, w, how, frac = tilted_draws(X_all, P, Ct, g_w, activation, M, seed_r, tail=TAIL_FINAL)
        if how == "reweighted prior draws" and frac >= CONTROL_MIN:
            prior = prior_cumulants(X_all, P, g_w, activation, coords, seed, replicates)[r]
            plain = plain_cumulants(F, coords, data_key(X_all, P, g_w, activation), seed_r)
            fresh = PriorControlled(F, w, coords, prior, plain)
            how = "reweighted prior draws, the prior's cumulants as control variate"
        else:
            fresh = MonteCarloCumulants(F, w, coords)
        if previous:
            fresh = MonteCarloCumulants.union([previous[r], fresh], shares=[previous[r].n_draws, fresh.n_draws])
        sets.append(fresh)
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
    reps = [np.concatenate(OneLoop(*args, c.w2(), coords, fit=loop.fit).finish(w3)[2])
            for c, w3 in zip(sets, w3_sets)]
    return point, np.array(reps)
