"""The single-neuron saddle where q has separated modes: the fixed point on draws of each region of weight
space weighed by the region's mass (docs/theory.md §6).

Draws started near the prior never reach a separated mode of q (numerics.modes), and a fixed point on them
misses it. Here q is cut into the bulk and one region per separated mode (numerics.annealing.Region); each
region gets its own draws (restricted MALA) and its mass Z_r by annealed importance sampling, and the draws
are pooled with weights Z_r / n_r. Reweighted to a nearby field Ct by the generated tilt
exp(phi^T (Ct - Ct0) phi), the pool stays an estimate of E_q[.] (each region's mass moves with its own
draws' weights), so numerics.reweighted_saddle's solver applies unchanged: stages retake the draws around
the point reached until the solution stays within their reach, then R independent sets (each with its own
annealed masses, so the masses' error is in the replicas' spread) give the point and its Monte Carlo error.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from .annealing import Base, Region, anneal, prior_base, region_draws
from .modes import separated_modes
from .proposal import ess as _ess
from .reweighted_saddle import (REDRAW, REPLICATES, STAGES, Reweighted, _below_noise, _checked_field, _Draws, _features,
                                _lost, _solve_on, _union)

#: regions holding less than this fraction of q's mass (annealed) get no draws; the others draws in proportion
#: to their mass, at least FLOOR of a set's (the fixed point may move mass between them)
NEGLIGIBLE = 1e-8
FLOOR = 1 / 8


def _regions(saddle, Ct0, seed, modes=None):
    """[(name, region, base)]: the bulk and each of `modes` (numerics.modes.Mode; q_Ct0's separated ones)."""
    modes = separated_modes(saddle, Ct0, seed)[0] if modes is None else modes
    features = np.array([m.features for m in modes]).reshape(len(modes), saddle.P)
    out = [("bulk", Region(features, -1), prior_base(saddle))]
    return out + [(f"mode {i + 1}", Region(features, i), Base(m.w, m.factor)) for i, m in enumerate(modes)]


def mixture_set(saddle, Ct0, draws, seed, modes=None):
    """One draw set of q_Ct0 pooled over its regions (_regions), and [(name, ln mass relative to the prior, its
    error)]."""
    regions = _regions(saddle, Ct0, seed, modes)
    annealed = [anneal(saddle, Ct0, base, region, seed + 31 * (i + 1)) for i, (_, region, base) in enumerate(regions)]
    log_masses = np.array([a.log_mass for a in annealed])
    fractions = np.exp(log_masses - logsumexp(log_masses))
    F, Fv, logw0 = [], [], []
    for i, ((name, region, base), a, frac) in enumerate(zip(regions, annealed, fractions)):
        if frac < NEGLIGIBLE:
            continue
        n = max(int(round(frac * draws)), int(FLOOR * draws))
        W = region_draws(saddle, Ct0, base, region, a, n, seed + 17 * (i + 1))
        f, fv = _features(saddle, W)
        F.append(f), Fv.append(fv), logw0.append(np.full(len(W), a.log_mass - math.log(len(W))))
    logw0 = np.concatenate(logw0)
    w = np.exp(logw0 - logw0.max())
    d = _Draws(np.vstack(F), np.vstack(Fv), logw0, _ess(w), None, (0.0, 0.0, 0.0))
    return d, [(name, a.log_mass, a.log_mass_error) for (name, _, _), a in zip(regions, annealed)]


def _describe(masses):
    total = logsumexp([m for _, m, _ in masses])
    parts = ", ".join(f"{name} {math.exp(m - total):.3g}" for name, m, _ in masses)
    return f"single-neuron MALA per region of q, weighed by annealed masses ({parts})"


def mixture_saddle(saddle, chi, C_start, draws, seed, replicates=REPLICATES, tol=1e-10, errors=True):
    """The saddle of `saddle` (a NonlinearSaddle) at chi from C_start on region-pooled draws (about `draws` per
    set); the result as numerics.reweighted_saddle's, its `masses` the regions' at the final field."""
    C, beyond, n_stage = C_start, 0.0, max(draws // 4, min(draws, 2000))
    for stage in range(1, STAGES + 1):
        Ct0 = _checked_field(saddle, C, chi)
        d, _ = mixture_set(saddle, Ct0, n_stage, seed + 104729 * stage)
        C, _, _, _, frac, done = _solve_on(saddle, chi, C, d, Ct0, _below_noise(tol, d))
        beyond = max(beyond, _solve_on.beyond)
        if done and frac >= REDRAW:
            break
        n_stage = min(2 * n_stage, draws)
    else:
        _lost(saddle, chi, C, beyond, frac, STAGES)
    Ct0 = _checked_field(saddle, C, chi)
    sets, masses = zip(*(mixture_set(saddle, Ct0, draws, seed + 7919 * (r + 1)) for r in range(replicates)))
    union = _union(sets)
    Cu, Cs, css, _, frac, done = _solve_on(saddle, chi, C, union, Ct0, _below_noise(tol, union))
    if not done:
        _lost(saddle, chi, Cu, beyond, frac, stage)
    _checked_field(saddle, Cu, chi)
    replicas = []
    for d in sets if errors else ():
        Cr, Csr, cssr, _, _, ok = _solve_on(saddle, chi, Cu, d, Ct0, _below_noise(tol, d))
        if ok:
            replicas.append((Cr, Csr, cssr))
    out = Reweighted(Cu, Cs, css, replicas, frac, stage, _describe(masses[0]), sum(len(d.logw0) for d in sets))
    out.masses = masses[0]
    return out
