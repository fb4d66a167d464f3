"""The single-neuron saddle where q has separated modes: the fixed point on draws of each region of weight
space weighed by the region's mass (docs/theory.md §6).

Draws started near the prior never reach a separated mode of q (numerics.modes), and a fixed point on them
misses it. Here q is cut into the bulk and one region per separated mode (numerics.annealing.Region); each
region gets its own draws and mass Z_r (the bulk: reweighted prior draws, their mean weight its mass, while
they reach it; a mode: annealed importance sampling from a Gaussian fitted to pilot draws of it, then MALA
restricted to its region), and the draws are
pooled with weights Z_r / n_r. Reweighted to a nearby field Ct by the generated tilt
exp(phi^T (Ct - Ct0) phi), the pool stays an estimate of E_q[.] (each region's mass moves with its own
draws' weights), so numerics.reweighted_saddle's solver applies unchanged: stages retake the draws around
the point reached until the solution stays within their reach, then R independent sets (each with its own
annealed masses, so the masses' error is in the replicas' spread) give the point and its Monte Carlo error.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from msat import generated

from ..progress import status

from .annealing import Base, Region, anneal, fitted_base, prior_base, region_draws
from .modes import separated_modes
from .proposal import ess as _ess
from .draw_sets import Draws as _Draws, features as _features, gaussian_set as _gaussian_set, union as _union
from . import refine
from .reweighted_saddle import (GAUSSIAN_MIN, REDRAW, STAGES, Reweighted, _below_noise, _checked_field, _lost,
                                _solve_on, solves, stage_draws)

#: modes heavier than the bulk by more than e^JUMP at the start are brought in by a homotopy in their masses,
#: from e^-MARGIN of the bulk's, in steps of WALK nats (down to MIN_WALK)
JUMP = 2.0
MARGIN = 10.0
WALK = 4.0
MIN_WALK = 0.25
#: modes holding less than this fraction of q's mass (annealed) get no draws; the others draws in proportion
#: to their mass, at least FLOOR of a set's (the fixed point may move mass between them). The bulk always gets
#: its draws: where the modes dwarf it, the homotopy in their masses starts from it
NEGLIGIBLE = 1e-8
FLOOR = 1 / 8
#: a region whose draws carry under this share of the weights at a point need not hold it (_held)
SHARE = 1e-3


def _regions(saddle, Ct0, seed, modes=None):
    """[(name, region, base)]: the bulk and each of `modes` (numerics.modes.Mode; q_Ct0's separated ones)."""
    modes = separated_modes(saddle, Ct0, seed)[0] if modes is None else modes
    features = np.array([m.features for m in modes]).reshape(len(modes), saddle.P)
    out = [("bulk", Region(features, -1), prior_base(saddle))]
    return out + [(f"mode {i + 1}", Region(features, i), Base(m.w, m.factor)) for i, m in enumerate(modes)]


def _prior_bulk(saddle, Ct0, region, draws, seed):
    """The bulk's draws as reweighted prior draws (numerics.reweighted_saddle's Gaussian set with the prior as
    proposal: scrambled Sobol' points, the prior's kernels as control variate), their weights zero outside
    the bulk: (set, ln mass, its error), or None where the weights keep under GAUSSIAN_MIN of the draws."""
    g = _gaussian_set(saddle, saddle.var_w * np.eye(saddle.D), Ct0, draws, seed)
    lw = np.where(region.contains(g.F[:, :saddle.P]), g.logw0, -np.inf)  # ln (q 1_bulk / prior): the tilt
    w = np.exp(lw - lw.max())
    if not _ess(w) >= GAUSSIAN_MIN * draws:
        return None
    g.logw0 = lw - math.log(draws)
    return g, float(logsumexp(g.logw0)), float(np.std(w, ddof=1) / math.sqrt(draws) / np.mean(w))


def mixture_set(saddle, Ct0, draws, seed, modes=None):
    """One draw set of q_Ct0 pooled over its regions (_regions), and [(name, ln mass relative to the prior, its
    error)]: the bulk's draws reweighted prior draws where they reach it (_prior_bulk), each region's draws
    otherwise restricted MALA after annealing (numerics.annealing)."""
    regions = _regions(saddle, Ct0, seed, modes)
    bulk = _prior_bulk(saddle, Ct0, regions[0][1], draws, seed + 13)
    # each region annealed from a Gaussian fitted to its own draws: its Laplace Gaussian (or the prior) is too
    # narrow, and masses annealed from it come out low, by more than their error says (numerics.annealing)
    regions = [(name, region, base if i == 0 and bulk else fitted_base(saddle, Ct0, base, region, seed + 53 * i + 53))
               for i, (name, region, base) in enumerate(regions)]
    annealed = [None if i == 0 and bulk else anneal(saddle, Ct0, base, region, seed + 31 * (i + 1))
                for i, (_, region, base) in enumerate(regions)]
    masses = [(name, *(bulk[1:] if a is None else (a.log_mass, a.log_mass_error)))
              for (name, _, _), a in zip(regions, annealed)]
    log_masses = np.array([m for _, m, _ in masses])
    fractions = np.exp(log_masses - logsumexp(log_masses))
    sets, control = [], (0.0, 0.0, 0.0)
    for i, ((name, region, base), a, frac) in enumerate(zip(regions, annealed, fractions)):
        if frac < NEGLIGIBLE and i > 0:
            continue
        if a is None:
            # the control variate is the prior's share of E_q: scaled by the bulk's fraction at Ct0 (it moves
            # with the field during the solve, a second-order error: the control itself is of the noise's size)
            sets.append((bulk[0], i))
            control = tuple(frac * c for c in bulk[0].control)
            continue
        n = max(int(round(frac * draws)), int(FLOOR * draws))
        W = region_draws(saddle, Ct0, base, region, a, n, seed + 17 * (i + 1))
        f, fv = _features(saddle, W)
        sets.append((_Draws(f, fv, np.full(len(W), a.log_mass - math.log(len(W))), 0.0, None, None), i))
    logw0 = np.concatenate([e.logw0 for e, _ in sets])
    w = np.exp(logw0 - logw0.max())
    # draws of a mode make the map steep: at P = 300 Anderson's sweeps failed on 9 of 10 solves on such draws
    # (53-120 sweeps each) before Newton-Krylov took over (then from their start; now from their best point)
    d = _Draws(np.vstack([e.F for e, _ in sets]), np.vstack([e.Fv for e, _ in sets]), logw0, _ess(w), None, control,
               any(i > 0 for _, i in sets))
    d.region = np.concatenate([np.full(len(e.logw0), i) for e, i in sets])  # each draw's region (0: the bulk)
    d.modal = d.region > 0
    return d, masses


def _shifted(d, shift):
    """The draws d with the modes' masses multiplied by e^shift."""
    logw0 = d.logw0 + shift * d.modal
    w = np.exp(logw0 - logw0.max())
    return _Draws(d.F, d.Fv, logw0, _ess(w), None, d.control, d.steep)


def _held(d, w):
    """The smallest effective fraction, at the weights w, of the draws of any region holding over SHARE of them,
    relative to the region's own at the field they were drawn at: the pool's effective fraction is mostly the
    bulk's, and can stay high where a mode's draws no longer reach the mode's law at the point reached (after
    the homotopy at P = 300, chi = 14 from chi = 8's saddle: 0.85, while a mode's draws held 0.011)."""
    held = 1.0
    for r in np.unique(d.region):
        m = d.region == r
        if not w[m].sum() > SHARE * w.sum():
            continue
        held = min(held, _ess(w[m]) / _ess(np.exp(d.logw0[m] - d.logw0[m].max())))
    return held


def _walk(saddle, chi, C, d, Ct0, shift, tol):
    """From C, the saddle of the law with the modes' masses multiplied by e^shift (shift <= 0), towards
    shift = 0 on the draws d in steps of at most WALK nats (doubled after a step that converges, halved after
    one that does not, down to MIN_WALK); returns the last C solved and its shift."""
    step = WALK
    while shift < 0 and step >= MIN_WALK:
        trial = min(0.0, shift + step)
        status(f"bringing in q's modes, e^{trial:.3g} of their masses")
        e = _shifted(d, trial)
        Cn, _, _, _, _, done = _solve_on(saddle, chi, C, e, Ct0, _below_noise(tol, e))
        if done:
            C, shift, step = Cn, trial, min(2 * step, 4 * WALK)
        else:
            step /= 2
    return C, shift


def _describe(masses):
    total = logsumexp([m for _, m, _ in masses])
    parts = ", ".join(f"{name} {math.exp(m - total):.3g}" for name, m, _ in masses)
    return (f"draws of each region of q (bulk: reweighted prior draws while they reach it; modes: restricted MALA), "
            f"weighed by their prior-draw or annealed masses ({parts})")


def masses_at(saddle, d, masses, Ct, Ct0):
    """[(name, ln mass at the field Ct, error)] of the regions of one draw set d drawn at Ct0: each region's
    draws reweighted by the generated tilt exp(phi^T (Ct - Ct0) phi), the sum of their weights its mass (the
    reweighting's own error, delta method, added to the annealed one); a region without draws keeps its mass."""
    tilt = generated.deep_linear_adaptation().tilt
    lw = d.logw0 + tilt(np.ascontiguousarray(d.F[:, :saddle.P]), np.ascontiguousarray(Ct - Ct0))[:, 0]
    out = []
    for i, (name, m, e) in enumerate(masses):
        r = (d.region == i) & np.isfinite(d.logw0)  # prior draws outside the bulk's region weigh nothing
        if not r.any():
            out.append((name, m, e))
            continue
        # the mass moves by the b-weighted mean of the draws' factors f (b: their weights at Ct0); its relative
        # error: f's relative spread over the square root of b's effective size
        b = np.exp(d.logw0[r] - d.logw0[r].max())
        b /= b.sum()
        f = np.exp(lw[r] - d.logw0[r] - np.max(lw[r] - d.logw0[r]))
        mean = float(b @ f)
        own = math.sqrt(float(b @ (f - mean) ** 2) * float(b @ b)) / mean
        out.append((name, float(logsumexp(lw[r])), math.hypot(e, own)))
    return out


def _pooled(masses):
    """Each region's mass over independent sets' [(name, ln mass, error)]: ln of the mean mass, its error the
    larger of the sets' own (delta method) and their spread, which sees the tails of annealed weights that
    a set's own error can miss; the first set's where the sets found different regions."""
    if len({tuple(n for n, _, _ in m) for m in masses}) > 1 or len(masses) < 2:
        return masses[0]
    out = []
    for name, pairs in zip([n for n, _, _ in masses[0]], zip(*[[(m, e) for _, m, e in ms] for ms in masses])):
        m, e = np.array(pairs).T
        z = np.exp(m - m.max())
        own = math.sqrt(float(np.sum((z * e) ** 2))) / float(z.sum())
        spread = float(np.std(z, ddof=1) / math.sqrt(len(z)) / z.mean())
        out.append((name, float(m.max() + math.log(z.mean())), max(own, spread)))
    return out


def mixture_saddle(saddle, chi, C_start, draws, seed, tol=1e-10, errors=True):
    """The saddle of `saddle` (a NonlinearSaddle) at chi from C_start on region-pooled draws (about `draws` in
    each of saddle.replicates sets); the result as numerics.reweighted_saddle's, its `masses` the regions' at
    the final field."""
    replicates = saddle.replicates
    (n_stage, total), beyond, shift, frac, C = stage_draws(draws, replicates), 0.0, None, 0.0, C_start
    cap = total // 4  # a stage's draws: up to a quarter of the final sets' together
    for stage in range(1, STAGES + 1):
        status(f"saddle search over q's regions, stage {stage} ({n_stage:,} draws)")
        Ct0 = _checked_field(saddle, C, chi)
        d, masses = mixture_set(saddle, Ct0, n_stage, seed + 104729 * stage)
        if shift is None:
            # modes far heavier than the bulk at the start (a saddle that missed them): the fixed point on the
            # draws cannot jump to the law they imply (their weight moves by e^(tens) along the way), so
            # their masses are brought in from e^-MARGIN of the bulk's (the start's own law) by a homotopy
            excess = logsumexp([m for _, m, _ in masses[1:]] or [-np.inf]) - masses[0][1]
            shift = -(excess + MARGIN) if excess > JUMP else 0.0
        walked = shift < 0
        if walked:
            C, shift = _walk(saddle, chi, C, d, Ct0, shift, tol)
            if shift < 0:
                n_stage = min(2 * n_stage, cap)
                continue  # retake the draws around the C reached
        C, _, _, w, frac, done = _solve_on(saddle, chi, C, d, Ct0, _below_noise(tol, d))
        beyond = max(beyond, _solve_on.beyond)
        # a stage that ended a homotopy never ends the search: its masses were annealed at the start's field
        # and carried to the point by reweighting across tens of nats, where every region can seem to hold
        # the point and fresh sets still find it far off (P = 1000: 0.86, docs/theory.md §6)
        if done and not walked and frac >= REDRAW and _held(d, w) >= REDRAW:
            break
        n_stage = min(2 * n_stage, cap)
    else:
        _lost(saddle, chi, C, beyond, frac, STAGES)
    Ct0 = _checked_field(saddle, C, chi)
    status(f"final draws over q's regions ({replicates} sets of about {draws:,})")
    sets, masses = zip(*(mixture_set(saddle, Ct0, draws, seed + 7919 * (r + 1)) for r in range(replicates)))
    union = _union(sets)
    Cu, Cs, css, _, frac, done = _solve_on(saddle, chi, C, union, Ct0, _below_noise(tol, union))
    stop = _solve_on.residuals[1]
    if not done:
        _lost(saddle, chi, Cu, beyond, frac, stage)
    _checked_field(saddle, Cu, chi)
    (Cu, Cs, css, frac), replicas, settled, outputs = refine.settle(saddle, chi, (Cu, Cs, css, frac), union, stop,
                                                                    sets, Ct0, tol, solves(), errors)
    # the masses at the solution's field, not at the one the sets were drawn at (the union's start)
    Ct = saddle.field(Cu, chi)[2]
    pooled = _pooled([masses_at(saddle, d, m, Ct, Ct0) for d, m in zip(sets, masses)])
    out = Reweighted(Cu, Cs, css, replicas, frac, stage, _describe(pooled), sum(len(d.logw0) for d in sets),
                     settled, outputs)
    out.masses = pooled
    return out
