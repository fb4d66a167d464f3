"""The single-neuron saddle solved on fixed draws: common random numbers and a Gaussian control
variate for the Monte Carlo estimator of kernel adaptation (docs/theory.md §2b, §6).

A set of draws of q_0 = q_{Ct0} (Ct0 the field near the saddle) is reweighted to any nearby field Ct
by the generated tilt exp(phi^T (Ct - Ct0) phi): the map C -> E_q[phi phi^T] becomes deterministic
and smooth, and Newton-Krylov steps (numerics.newton, generated tangents) solve it to a thousandth of
the draws' Monte Carlo error; near standard scaling, where the map is a mild contraction, Anderson's
sweeps (numerics.anderson) do so in fewer passes. While the solution lies beyond the draws' reach
(weights too uneven), the draws are retaken around the point reached (one set per stage: locating).

The final draws come from a Gaussian G = N(0, Sigma) (scrambled Sobol' points, numerics.normals, one
scrambling per set), reweighted to q by the generated proposal ratio and tilt. G's own moments
E_G[phi phi^T] are the NNGP kernels of X Sigma X^T, known exactly, so the estimate is E_G[phi phi^T]
plus the weighted minus the plain draw mean of phi phi^T: the noise q shares with G cancels. Sigma is
q's second moment estimated from the locating draws, or the covariance of the linearised unit's law
(generated precision), whichever gives the more even weights on a pilot (numerics.proposal); where G
reaches q poorly the final draws are single-neuron MALA draws instead.
A test preactivation x*.w has a part orthogonal to the training inputs' span that the tilt never sees,
Gaussian with the prior's variance under q and G alike: the test features in C* are averaged over it
(generated smoothed_features, Rao-Blackwellised); c** keeps the plain features.
R independent draw sets (the saddle's `replicates`) give the Monte Carlo error (spread / sqrt R); their
union the point estimate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from msat import generated

from ..errors import ConvergenceError
from ..progress import status
from . import anderson, newton, refine
from .draw_sets import Draws, gaussian_sets, mala_set, mala_sets
from .proposal import TAIL_FINAL, ess as _ess, proposal as _proposal, tail_index

#: locating stops once the weights at the solution keep this fraction of the draws' own effective size
REDRAW = 0.5
#: ... within this many stages, the first on a sixteenth of the final draws of all sets (at least 2,000, or a
#: quarter of them), each after one that fails on GROWTH times as many (up to all the final draws, whatever
#: the number of sets they are split into): where the map is steep (near
#: mean-field scaling) few draws' noise, amplified, moves their fixed point far from the saddle or removes it.
#: A stage that stops at the edge of its draws' reach (weights under REACH times FLOOR) is followed by one of
#: the same size: reach is a fraction of the draws' effective size, which more draws do not extend
STAGES, GROWTH, REACH = 8, 2, 2.0
#: a stage that fails having moved C less than this fraction of the way its start's residual indicates
#: ends locating (measured, stages from a far start: P = 80 moves 0.07-0.15 of it, P = 1000 under 5e-4)
CREEP = 0.01
#: a candidate C whose weights are more uneven than this is outside the draws' reach (infeasible)
FLOOR = 0.02
#: the Gaussian final draws are used when their weights at the solution keep this effective fraction (and their
#: upper tail's Pareto shape is under proposal.TAIL_FINAL: where q is wider than G in some direction, relu near
#: mean field, the weights are heavy-tailed and the estimate biased or its error understated); a failed search
#: whose last point has tilt/prior above NEAR_BOUNDARY ends at the normalisability boundary
GAUSSIAN_MIN, NEAR_BOUNDARY = 0.3, 0.9
#: how the result names the proposal's covariance (numerics.proposal); draw sets behind the Monte Carlo error
PROPOSAL_NAMES = {"moments": "q's estimated second moment", "linearised": "the linearised unit's law"}
#: up to this chi/N the fixed point on the draws is solved by Anderson-accelerated sweeps (Newton-Krylov where
#: they fail within ANDERSON_SWEEPS, beyond, and on draws of a separated mode of q: there the map is steep)
ANDERSON_CHI_OVER_N, ANDERSON_SWEEPS = 0.1, 40
#: the fixed point on draws is solved to this fraction of their relative Monte Carlo error (_below_noise)
NOISE_TOL = 1e-3
#: a draw set's own fixed point is solved to this fraction of its distance from the union's (where that is
#: below NOISE_TOL's bound): its shift is the Monte Carlo error, which 1/sqrt(M) overstates for quasi-random
#: draws with a control variate, and a set stopped at the union's start reported an error of exactly 0
RESOLVE = 1e-2
#: the finest relative residual asked of a fixed point on draws (float64 sums over them still resolve it)
TOL_FLOOR = 1e-12
#: what a user can do where the draws do not hold the saddle
REMEDY = (" (q(w) moves further than its draws reach: approach this chi along a ladder, e.g. --chi 1,2,4,..., or "
          "raise --mc-samples; --method sample samples the networks themselves)")


@dataclass
class Reweighted:
    C: np.ndarray
    Cs: np.ndarray
    css: np.ndarray
    replicas: list  # (C, Cs, css) of each draw set solved alone
    effective_fraction: float  # of the union's weights at the solution
    stages: int
    draws: str
    n_draws: int
    settled: bool = True  # every stop within a tenth of the error it is measured against (refine.settle)
    outputs: list = None  # the replicas' train and test means and test variances, where refine.settle had them


def fixed_point_map(saddle, chi, d: Draws, Ct0):
    """(s, jvp): the saddle map C -> E_{q_Ct(C)}[phi phi^T] on the draws d (flattened; s(x) is (s, aux)
    or None outside the draws' reach) and its Jacobian-vector product, in numerics.newton's form."""
    P, tilt = saddle.P, generated.deep_linear_adaptation().tilt
    Ftr = d.F[:, :P]

    def sweep(x):
        C = x.reshape(P, P)
        try:
            A, alpha, Ct = saddle.field(0.5 * (C + C.T), chi)
        except ConvergenceError:
            return None
        ok, ratio = saddle.normalisable(Ct)
        if not ok:
            sweep.beyond = max(sweep.beyond, ratio)
            return None  # finite draws would reweight to a law that does not exist
        lw = d.logw0 + tilt(Ftr, Ct - Ct0)[:, 0]
        w = np.exp(lw - lw.max())
        w /= w.sum()
        frac = _ess(w) / d.reference
        if not frac >= FLOOR:
            return None
        moments = saddle._moments.weighted_moments(Ftr, d.F[:, P:], d.Fv, w)
        Cn, Cs, css = (m + c for m, c in zip(moments, d.control))
        return 0.5 * (Cn + Cn.T).ravel(), (Cs, css, frac, A, alpha, w)

    def jvp(x, v, at):
        # the field's generated tangent, then the tilt's derivative of the weighted moments (generated)
        _, _, _, A, alpha, w = at[1]
        dC = v.reshape(P, P)
        dCt = saddle.field_tangent(A, alpha, 0.5 * (dC + dC.T), chi)
        dM = saddle._moments.tilt_tangent(Ftr, w, dCt)
        return 0.5 * (dM + dM.T).ravel()

    sweep.beyond = 0.0  # the largest tilt/prior ratio of a candidate refused as not normalisable
    return sweep, jvp


def _below_noise(tol, d: Draws):
    """The relative residual the fixed point on the draws d is solved to: NOISE_TOL times their relative
    Monte Carlo error ~ 1 / sqrt(effective size) (an upper bound: the control variate only lowers it), or
    tol if larger. Iterating further below the noise only costs sweeps."""
    return max(tol, NOISE_TOL / math.sqrt(max(d.reference, 1.0)))


def _remembered(sweep, last=None):
    """sweep with its last evaluation kept (`last`: [x, sweep(x)] known before): the start is evaluated once,
    not again by the solver."""
    last = [None, None] if last is None else list(last)

    def remembered(x):
        if last[0] is None or not np.array_equal(x, last[0]):
            last[0], last[1] = np.array(x, copy=True), sweep(x)
        return last[1]

    remembered.last = last
    return remembered


def _solve_on(saddle, chi, C_start, d: Draws, Ct0, tol, resolve=None):
    """The saddle on the draws d: (C, Cs, css, weights at C, effective fraction, converged); with `resolve`, to
    at most that fraction of the start's own residual too (never below TOL_FLOOR)."""
    P = saddle.P
    inner, jvp = fixed_point_map(saddle, chi, d, Ct0)
    # a finer solve of the same draws starts where the last one ended, whose map it has already evaluated
    memo = d.memo if d.memo is not None and d.memo[0] is saddle and d.memo[1] == chi and d.memo[2] is Ct0 else None
    sweep = _remembered(inner, memo[3:] if memo else None)
    _solve_on.beyond, _solve_on.residuals = 0.0, (np.inf, np.inf)
    start = sweep(C_start.ravel())
    if start is None:  # the draws do not even reach the start (too uneven weights)
        return C_start, None, None, None, 0.0, False
    start_residual = float(np.linalg.norm(start[0] - C_start.ravel())
                           / max(np.linalg.norm(C_start), np.linalg.norm(start[0]), 1e-300))  # the solvers' measure
    if resolve is not None:
        tol = max(TOL_FLOOR, min(tol, resolve * start_residual))
    what = "adaptive: the reweighted single-neuron fixed point"
    x, x0 = None, C_start.ravel()
    if chi / saddle.N <= ANDERSON_CHI_OVER_N and not d.steep:
        # the map is a mild contraction here: Anderson's sweeps (two passes over the draws each) reach the
        # same point as Newton's, which pay for several Jacobian products (two passes each) per step
        try:
            x, aux, _, res = anderson.solve(sweep, x0, chi, tol=tol, maxiter=ANDERSON_SWEEPS, what=what)
        except ConvergenceError as failed:
            x0 = anderson.best_or(failed, x0)  # Newton starts from their best point, not from scratch
    if x is None:
        x, aux, _, res, _ = newton.solve(sweep, jvp, x0, chi, tol=tol, maxiter=30, partial=True, what=what)
    _solve_on.beyond, _solve_on.residuals = inner.beyond, (start_residual, res)
    if sweep.last[1] is not None and np.array_equal(sweep.last[0], x):
        d.memo = (saddle, chi, Ct0) + tuple(sweep.last)
    C = x.reshape(P, P)
    return 0.5 * (C + C.T), aux[0], aux[1], aux[5], aux[2], res <= tol


def _checked_field(saddle, C, chi):
    Ct = saddle.field(C, chi)[2]
    ok, ratio = saddle.normalisable(Ct)
    if not ok:
        raise ConvergenceError("adaptive: the single-neuron law q(w) is not normalisable "
                               f"(tilt/prior = {ratio:.4f} > 1, docs/theory.md §6)", {"chi": chi})
    return Ct


def _lost(saddle, chi, C, beyond, frac, stages):
    """Raise why locating the saddle failed: the normalisability boundary, or draws that do not hold it."""
    ratio = saddle.normalisable(saddle.field(C, chi)[2])[1]
    if beyond > 1 and ratio > NEAR_BOUNDARY:
        raise ConvergenceError(
            "adaptive: no saddle with a normalisable single-neuron law q(w) found: the search ends at its "
            f"normalisability boundary (tilt/prior {ratio:.3g}, steps beyond refused; docs/theory.md §6)",
            {"chi": chi, "stages": stages})
    raise ConvergenceError("adaptive: the reweighted single-neuron fixed point keeps leaving its draws" + REMEDY,
                           {"chi": chi, "effective_fraction": frac, "stages": stages})


def stage_draws(draws, replicates):
    """(the first locating stage's draws, the most any stage takes) for `replicates` final sets of `draws`."""
    total = draws * replicates
    return max(total // 16, min(total // 4, 2000)), total


def reweighted_saddle(saddle, chi, C_start, draws, seed, tol=1e-10, errors=True):
    """The saddle of `saddle` (a NonlinearSaddle) at chi from C_start, on saddle.replicates sets of `draws`
    draws; without `errors` the sets are not solved alone (no replicas: a step of a continuation needs only C)."""
    C, beyond, replicates = C_start, 0.0, saddle.replicates
    n_stage, cap = stage_draws(draws, replicates)
    for stage in range(1, STAGES + 1):
        status(f"saddle search, stage {stage} ({n_stage:,} draws)")
        Ct0 = _checked_field(saddle, C, chi)
        d, how = mala_set(saddle, Ct0, n_stage, seed + 104729 * stage, keep=True)
        C_from = C
        C, _, _, w, frac, done = _solve_on(saddle, chi, C, d, Ct0, _below_noise(tol, d))
        beyond = max(beyond, _solve_on.beyond)
        if done and frac >= REDRAW:
            break
        crept = np.linalg.norm(C - C_from) <= CREEP * _solve_on.residuals[0] * np.linalg.norm(C_from)
        if not done and crept and _solve_on.beyond <= 1:
            # the saddle lies many reaches of these draws away (or Newton's model finds no step at all):
            # more stages crawl towards it at great cost, a nearer start (continuation in chi) may not
            _lost(saddle, chi, C, beyond, frac, stage)
        if done or frac >= REACH * FLOOR:
            n_stage = min(GROWTH * n_stage, max(cap, n_stage))
    else:
        _lost(saddle, chi, C, beyond, frac, STAGES)
    Ct0 = _checked_field(saddle, C, chi)
    Sigma = _proposal(saddle, d, w, Ct0, seed + 6007)
    seeds = [seed + 7919 * (r + 1) for r in range(replicates)]
    status(f"final draws ({replicates} sets of {draws:,})")
    sets, union = gaussian_sets(saddle, Sigma, Ct0, draws, seeds)
    Cu, Cs, css, wu, frac, done = _solve_on(saddle, chi, C, union, Ct0, _below_noise(tol, union))
    how = (f"Gaussian proposal ({PROPOSAL_NAMES[_proposal.chosen]}) with its moments as control variate")
    if not (done and frac >= GAUSSIAN_MIN and tail_index(wu) < TAIL_FINAL):
        status(f"final MALA draws ({replicates} sets of {draws:,})")
        sets, union = mala_sets(saddle, Ct0, draws, seeds)
        Cu, Cs, css, _, frac, done = _solve_on(saddle, chi, C, union, Ct0, _below_noise(tol, union))
        how = "single-neuron MALA"
        if not done:
            raise ConvergenceError("adaptive: the reweighted single-neuron fixed point left its final draws" + REMEDY,
                                   {"chi": chi, "effective_fraction": frac})
    stop = _solve_on.residuals[1]  # what the union's solve reached
    _checked_field(saddle, Cu, chi)
    (Cu, Cs, css, frac), replicas, settled, outputs = refine.settle(saddle, chi, (Cu, Cs, css, frac), union, stop, sets,
                                                           Ct0, tol, solves(), errors)
    return Reweighted(Cu, Cs, css, replicas, frac, stage, how, sum(len(d.logw0) for d in sets), settled, outputs)


def solves():
    """How the draws are solved on, for numerics.refine (read when called: tests change the tolerances)."""
    return refine.Solves(_solve_on, _below_noise, RESOLVE, TOL_FLOOR)
