"""The modes of the deep exact integrand of a linear network (docs/theory.md §2d), found over the whole range of
tau = ln u, not only near a starting point.

The integrand over the layers' t_l = ln s_l is prod_l p_l(t_l) exp(-F(sum_l t_l)), p_l the log-Gamma prior of
shape N_l / 2 and F the likelihood part of the action. Its stationary points lie where each
e^(t_l) = 1 - 2 F'(tau) / N_l, so where tau = sum_l ln(1 - 2 F'(tau) / N_l): the roots of a function of tau
alone. Far from the NNGP's scales (inputs of 1e-2, targets of 10) it has several roots, and the mode a search
from u = 1 finds can lie thousands of nats below another (an outside check: u = 1.6 against 4,900). Every
root is found on a scan, refined, and ranked by its Laplace log mass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from msat import generated
from msat.generated.rescaling_exact import layer_mode

from .saddle import U_MAX

#: nodes of the scan of tau over [-U_MAX, U_MAX]: a step of 0.25, a factor 1.28 in u (two stationary points closer than
#: that, a barely separated bump, can be missed); 4,001 nodes made an exact ladder 2.6 times slower than before the
#: scan, 1,601 1.4 times (P = 1000, 200 points)
SCAN = 1601


@dataclass(frozen=True)
class Mode:
    tau: float
    log_mass: float  # Laplace estimate, up to a constant shared by every mode


def slopes(spec, tau, chi, kappa, g_v):
    """(dF/dtau, d2F/dtau2) of the likelihood part F at each tau (generated slopes in u = e^tau)."""
    tau = np.atleast_1d(np.asarray(tau, dtype=float))
    u = np.exp(tau)
    d = np.empty((tau.size, 2))
    generated.exact().likelihood_slopes(u, np.full(tau.size, float(chi)), float(kappa), float(g_v), spec.lam,
                                        spec.yt2, spec.mult, d)
    return u * d[:, 0], u * d[:, 0] + u ** 2 * d[:, 1]


def _layers(widths, F_tau):
    """Each layer's stationary t_l given the likelihood's slope, and the curvature of its -log density there:
    the mode and shape of its density tilted by theta = -F'(tau) (generated ``layer_mode``); NaN where a
    layer has no stationary point."""
    mod = generated.exact()
    return np.array([mod.layer_mode(float(N), -float(F_tau)) for N in widths]).T


@njit(cache=True)
def _stationary_sums(widths, F_tau, out):
    """out[j] = sum_l t_l at the likelihood slope F_tau[j] (generated layer_mode; NaN where a layer has none): the
    scan's loop, compiled (a Python loop over 4,001 nodes cost some 60 ms a point, 8-33 times an exact ladder)."""
    for j in range(F_tau.shape[0]):
        total = 0.0
        for N in widths:
            total += layer_mode(N, -F_tau[j])[0]
        out[j] = total


def _psi(spec, widths, tau, chi, kappa, g_v):
    """sum_l t_l(tau) - tau: zero on the stationary curve; -inf where a layer has no stationary point."""
    F_tau, _ = slopes(spec, tau, chi, kappa, g_v)
    total = np.empty(F_tau.shape[0])
    _stationary_sums(np.asarray(widths, dtype=np.float64), np.ascontiguousarray(F_tau, dtype=np.float64), total)
    return np.where(np.isnan(total), -np.inf, total) - np.atleast_1d(tau)


def _log_mass(spec, widths, tau, tau_ref, chi, kappa, g_v):
    """The joint log density at the stationary point over tau minus half the log determinant of its Hessian;
    None for a saddle (not a maximum)."""
    mod = generated.exact()
    F_tau, F_tt = (float(v[0]) for v in slopes(spec, tau, chi, kappa, g_v))
    t, a = _layers(widths, F_tau)  # the Hessian of -log: diag(a) + F'' 1 1^T
    schur = 1.0 + F_tt * np.sum(1.0 / a)
    if schur <= 0:
        return None
    dF, logp = np.empty(1), np.empty(1)
    mod.likelihood_difference(np.array([tau - tau_ref]), math.exp(tau_ref), float(chi), float(kappa), float(g_v),
                              spec.lam, spec.yt2, spec.mult, dF)
    prior = 0.0
    for t_l, N in zip(t, widths):
        mod.layer_log_density(np.array([t_l]), 0.5 * float(N), logp)  # the untilted prior: mode 0, shape N/2
        prior += logp[0]
    return float(prior - dF[0] - 0.5 * (np.sum(np.log(a)) + math.log(schur)))


def modes(spec, widths, chi, kappa, g_v, tau_init: float = 0.0) -> list[Mode]:
    """Every maximum of the integrand along its stationary curve, the largest log mass first; the root nearest
    tau_init (a warm start) is always among the candidates."""
    from scipy.optimize import brentq

    def psi(t):
        v = float(_psi(spec, widths, t, chi, kappa, g_v)[0])
        return max(v, -1e300)

    grid = np.linspace(-U_MAX, U_MAX, SCAN)
    p = np.maximum(_psi(spec, widths, grid, chi, kappa, g_v), -1e300)
    brackets = [(grid[i], grid[i + 1]) for i in np.nonzero(np.sign(p[:-1]) != np.sign(p[1:]))[0]]
    lo, hi, step = tau_init - 0.5, tau_init + 0.5, 0.5
    while (psi(lo) <= 0 or psi(hi) >= 0) and lo > -U_MAX and hi < U_MAX:
        lo, hi, step = (lo - step if psi(lo) <= 0 else lo), (hi + step if psi(hi) >= 0 else hi), 2 * step
    if psi(lo) > 0 > psi(hi):
        brackets.append((lo, hi))
    roots = []
    for t in sorted(brentq(psi, a, b, xtol=1e-14, rtol=1e-15) for a, b in brackets):
        if not roots or t - roots[-1] > 1e-9 * max(1.0, abs(t)):  # one root reached from two brackets
            roots.append(t)
    if not roots:
        return []
    found = [(t, _log_mass(spec, widths, t, roots[0], chi, kappa, g_v)) for t in roots]
    return sorted((Mode(t, m) for t, m in found if m is not None), key=lambda m: -m.log_mass)


#: another mode holding more than this share of the mass makes an answer from one mode wrong by about as much (a
#: failed point); over SHARE_WARN it is named in a warning
SHARE_FAIL, SHARE_WARN = 1e-3, 1e-6


@dataclass(frozen=True)
class Verdict:
    level: str | None  # None (on the heaviest mode, no other of weight), "warn", "fail" or "lighter"
    text: str = ""
    several: bool = False  # the integrand has more than one mode
    tau: float = 0.0  # ln u of the heaviest mode


def judge(spec, widths, chi, kappa, g_v, u) -> Verdict:
    """How an answer at the rescaling u (a saddle's, or the effective rescaling of a train mean, docs/theory.md §4)
    stands against the modes of the integrand: "lighter" where u lies nearer a mode other than the heaviest, "fail"
    where another mode holds over SHARE_FAIL of the mass (Laplace masses), "warn" over SHARE_WARN. An outside audit
    found single-saddle methods and chains in one mode 2-40 times off, converged, where a second mode held 2-50%."""
    found = modes(spec, widths, chi, kappa, g_v)
    if not found or not u > 0:
        return Verdict(None)
    near = min(found, key=lambda m: abs(m.tau - math.log(u)))
    if near is not found[0]:
        return Verdict("lighter", f"the mode at u = {math.exp(near.tau):.4g} of the integrand over the kernel's scale, "
                       f"{found[0].log_mass - near.log_mass:.4g} nats lighter than its heaviest at "
                       f"u = {math.exp(found[0].tau):.4g}", True, found[0].tau)
    masses = np.array([m.log_mass for m in found])
    share = float(np.sum(np.exp(masses[1:] - masses.max())) / np.sum(np.exp(masses - masses.max())))
    if share <= SHARE_WARN:
        return Verdict(None, several=len(found) > 1, tau=found[0].tau)
    return Verdict("fail" if share > SHARE_FAIL else "warn",
                   f"{'another mode' if len(found) == 2 else 'other modes'} of the integrand over the kernel's scale "
                   f"(u = {', '.join(f'{math.exp(m.tau):.4g}' for m in found[1:])}), holding {share:.2g} of the mass "
                   f"against the heaviest's at u = {math.exp(found[0].tau):.4g}", True, found[0].tau)


#: a ladder of up to this many points has every point judged; a longer one its sentinels and as many points
#: spread evenly along it (a scan costs 3-18 ms at 150-1,000 modes: every point of a 200-point loop ladder at
#: P = 2000 would cost 3 times the ladder)
JUDGED = 32


def sentinels(chis) -> list:
    """The points of a ladder judged first: all of them up to JUDGED, else its ends, its smallest and largest chi
    (a ladder 1, 10, 1 ends where the integrand has one mode and passes through two) and points spread evenly.
    A window of several modes narrower than the spacing of a long ladder can still pass unjudged."""
    n = len(chis)
    if n <= JUDGED:
        return list(range(n))
    spread = np.linspace(0, n - 1, JUDGED - 4).round().astype(int).tolist()
    return sorted({0, n - 1, int(np.argmin(chis)), int(np.argmax(chis)), *spread})


def along(items, judge_one):
    """The verdicts of a ladder's points: every point judged where one of its sentinels sees several modes, else
    none (their scans are the whole cost of a ladder on a unimodal integrand)."""
    first = {k: judge_one(items[k]) for k in sentinels([x.chi for x in items])}
    if not any(v.several for v in first.values()):
        return [Verdict(None)] * len(items)
    return [first.get(k) or judge_one(x) for k, x in enumerate(items)]


def refusal(v: Verdict, what: str) -> str:
    """Why an answer judged "lighter" or "fail" is not the posterior's (``what``: the answer judged)."""
    return f"{what} {'lies on' if v.level == 'lighter' else 'misses'} {v.text}; --method exact integrates every mode"


def mark(results, verdicts, what, diagnostics=None):
    """Results whose verdict is "lighter" or "fail" are not converged (values kept, the reason given), "warn" adds a
    warning; ``what``: the answer judged ("the deep chain's saddle", "the chains")."""
    for r, v in zip(results, verdicts):
        if v.level in ("lighter", "fail"):
            r.unconverged(refusal(v, what), diagnostics or {})
        elif v.level == "warn":
            r.warnings.append(f"{what} leaves out {v.text}")
    return results
