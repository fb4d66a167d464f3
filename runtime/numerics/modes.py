"""Separated modes of the adapted single-neuron law q(w) ∝ N(w; 0, g_w/D) exp(phi(Xw)^T Ct phi(Xw)) that
draws started near the prior miss (docs/theory.md §6).

With a bounded phi (erf) and many training points, q can hold besides its bulk near the prior a mode of
neurons aligned with the field's top direction: far out (|w| ~ 1.5 sqrt(g_w)), its tilt hundreds of nats
above anything a prior draw reaches, and cut off from the bulk by the prior's volume in D dimensions.
Neither reweighted prior draws nor MALA chains started in the bulk cross into it, so a fixed point on
them can come out clean while q, at the field it reports, puts almost all its mass in the mode. This
module finds such modes by ascent from the linearised tilt's top directions, weighs them against the
bulk by Laplace's method (log q and its gradient generated, the Hessian their finite difference; the
prior's own Laplace integral normalises both, so no density is written here), and checks that a
saddle's C = E_q[phi phi^T] holds what the mode contributes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import minimize
from scipy.special import logsumexp

from msat import generated
from msat.generated.densities import neuron_log_densities

from ..errors import ConvergenceError
from .normals import standard_normals

#: a mode holding more than this fraction of q's mass (Laplace) must show in the saddle's C ...
MASS_FLOOR = 1e-3
#: ... with at least this fraction of the overlap with its features that its mass implies
HELD = 0.1
#: the ascent starts along the top eigenvectors of the linearised tilt X^T Ct X, both signs, at these
#: radii in units of the prior's typical norm sqrt(g_w)
DIRECTIONS = 2
RADII = (1.5,)
#: prior draws weighing the bulk, and Gaussian draws around a mode estimating its overlap
BULK_DRAWS = 4096
MODE_DRAWS = 256
#: modes whose features are this parallel (or anti-parallel) count as one in the overlap check
MIRROR = 0.9
#: a separated mode's tilt exceeds every prior draw's (and the origin's) by this many nats
SEPARATION = 1.0


@dataclass
class Mode:
    w: np.ndarray  # the maximum of log q
    log_mass: float  # ln (its Laplace mass / the prior's), the prior's mass being that of N(0, g_w/D)
    tilt: float  # phi^T Ct phi at w
    features: np.ndarray  # phi(X w)
    factor: np.ndarray  # Cholesky factor of -d^2 log q at w (Laplace's precision)


def _log_q(saddle, Ct, W, XT=None):
    """log q_Ct (up to a constant) and its gradient at the rows of W (generated); with XT of no columns, the prior's."""
    W = np.ascontiguousarray(np.atleast_2d(W), dtype=np.float64)
    lq, grad = np.empty(len(W)), np.empty(W.shape)
    neuron_log_densities(W, saddle._XT if XT is None else XT, Ct, float(saddle.D), saddle.g_w, saddle._act, lq, grad)
    return lq, grad


def _hessian_factor(saddle, Ct, w, XT=None):
    """The Cholesky factor of -d^2 log q at w (central differences of the generated gradient), or None where
    it is not positive definite (not a maximum)."""
    h = 1e-5 * math.sqrt(saddle.var_w)
    E = h * np.eye(saddle.D)
    G = (_log_q(saddle, Ct, w + E, XT)[1] - _log_q(saddle, Ct, w - E, XT)[1]) / (2 * h)
    try:
        return np.linalg.cholesky(-0.5 * (G + G.T))
    except np.linalg.LinAlgError:
        return None


def _log_det(L):
    return 2.0 * float(np.sum(np.log(np.diag(L))))


def find_modes(saddle, Ct, above=-np.inf):
    """The maxima of q_Ct with tilt above `above` reached by L-BFGS ascent from the starts (DIRECTIONS,
    RADII), heaviest first, with their Laplace masses relative to the prior's."""
    if not hasattr(saddle, "_XT"):
        saddle._XT = np.ascontiguousarray(saddle.X.T)
    Ct = np.ascontiguousarray(Ct)
    none, zero = np.zeros((saddle.D, 0)), np.zeros(saddle.D)  # no inputs: log q is the prior's
    lq0 = _log_q(saddle, np.zeros((0, 0)), zero, none)[0][0]
    logdet0 = _log_det(_hessian_factor(saddle, np.zeros((0, 0)), zero, none))
    V = np.linalg.eigh(saddle.X.T @ Ct @ saddle.X)[1][:, ::-1][:, :DIRECTIONS]
    found = []
    for v in V.T:
        for start in (r * s * math.sqrt(saddle.g_w) * v for r in RADII for s in (1, -1)):
            res = minimize(lambda w: tuple(-a[0] for a in _log_q(saddle, Ct, w)), start, jac=True,
                           method="L-BFGS-B", options={"maxiter": 500, "gtol": 1e-8})
            w = res.x
            F = saddle._phi(w[None])[0, :saddle.P]
            tilt = float(generated.deep_linear_adaptation().tilt(F[None], Ct)[0, 0])
            if not tilt > above or any(np.linalg.norm(w - m.w) < 1e-3 * math.sqrt(saddle.g_w) for m in found):
                continue
            L = _hessian_factor(saddle, Ct, w)
            if L is None:
                continue
            lq = _log_q(saddle, Ct, w)[0][0]
            found.append(Mode(w, float(lq - lq0 - 0.5 * (_log_det(L) - logdet0)), tilt, F, L))
    return sorted(found, key=lambda m: -m.log_mass)


def _overlap(Phi, f):
    """(f^T phi)^2 / |f|^4 per row phi of Phi: a draw's share of the quadratic form f^T C f / |f|^4."""
    return (Phi @ f) ** 2 / (f @ f) ** 2


def separated_modes(saddle, Ct, seed=0):
    """(the separated modes of q_Ct, heaviest first; the training features and tilts of BULK_DRAWS prior draws)."""
    Z = standard_normals(seed, BULK_DRAWS, saddle.D) * math.sqrt(saddle.var_w)
    Phi = saddle._phi(Z)[:, :saddle.P]
    tilt = generated.deep_linear_adaptation().tilt(Phi, np.ascontiguousarray(Ct))[:, 0]
    # a maximum whose tilt some prior draw reaches (or the origin's, zero) is the bulk's own: not separated
    return find_modes(saddle, Ct, above=max(float(tilt.max()), 0.0) + SEPARATION), Phi, tilt


def missed_mode(saddle, C, Ct, seed=0):
    """The diagnostics of the heaviest mode of q_Ct that C does not hold, or None. A mode's share f of q's
    mass is its Laplace mass over that of the bulk (prior draws reweighted by the tilt) plus the modes'
    (separated: tilts above every prior draw's); C holds it when its overlap s(C) = f*^T C f* / |f*|^4 with the mode's features f*
    reaches HELD of the rise (1 - f) s_bulk + f s_mode - s_bulk that the mode's mass implies (s_mode over
    draws of the mode's Laplace Gaussian, s_bulk over the bulk's draws)."""
    modes, Phi, tilt = separated_modes(saddle, Ct, seed)
    if not modes:
        return None
    log_bulk = float(logsumexp(tilt) - math.log(BULK_DRAWS))
    wb = np.exp(tilt - tilt.max())
    wb /= wb.sum()
    log_total = float(logsumexp([log_bulk] + [m.log_mass for m in modes]))
    rng = np.random.default_rng(seed)
    for m in modes:
        # mirror modes (odd phi) share the overlap: their masses add
        f = sum(math.exp(o.log_mass - log_total) for o in modes
                if abs(o.features @ m.features) > MIRROR * (m.features @ m.features))
        if f < MASS_FLOOR:
            break
        near = m.w + solve_triangular(m.factor, rng.standard_normal((saddle.D, MODE_DRAWS)), trans="T").T
        s_mode = float(np.mean(_overlap(saddle._phi(near)[:, :saddle.P], m.features)))
        s_bulk = float(wb @ _overlap(Phi, m.features))
        s_C = float(m.features @ C @ m.features / (m.features @ m.features) ** 2)
        rise = f * (s_mode - s_bulk)
        if s_C - s_bulk < HELD * rise:
            return {"mode_mass_fraction": f, "mode_tilt": m.tilt, "mode_norm": float(np.linalg.norm(m.w)),
                    "overlap_held": (s_C - s_bulk) / rise, "bulk_max_tilt": float(tilt.max())}
    return None


class MissedModeError(ConvergenceError):
    """A saddle whose C misses a separated mode of q (check_modes): other routes to the same fixed point
    (continuation, the stochastic iteration from the bulk) start from the same side of the barrier."""


def missed(err):
    """Re-raise err if it is a MissedModeError (a fallback to another route would only repeat it)."""
    if isinstance(err, MissedModeError):
        raise err


#: with one input dimension (after the inputs' span) q is one-dimensional, and C by quadrature must agree with
#: the saddle's within this (relative, Frobenius; Monte Carlo errors of C are ~1e-2 and under)
QUADRATURE_RTOL = 0.05
QUADRATURE_NODES = 8001


def training_line(saddle):
    """The unit vector u (D,) along which every training input lies (X of rank 1), or None: q's training block then
    depends on w through u.w alone, a one-dimensional law, whatever the test inputs add to the span (a review: one
    test point off the line made D = 2 and skipped the check, train means 7,500 MCSE off)."""
    if not hasattr(saddle, "_line"):
        sv, Vt = np.linalg.svd(saddle.X, full_matrices=False)[1:]
        saddle._line = Vt[0] if sv.size and sv[0] > 0 and (sv.size == 1 or sv[1] <= 1e-10 * sv[0]) else None
    return saddle._line


def quadrature_gap(saddle, C, Ct, u) -> float:
    """||C_q - C||_F / ||C_q||_F, C_q = E_q[phi phi^T] over the training block by the trapezoid rule along the
    training inputs' line u (training_line), on a grid that holds all of q's mass, for bounded phi (erf): its tilt
    is at most P lambda_max(Ct) (|phi| <= 1) and zero at w = 0, and u.w ~ N(0, var_w) under the prior, so q is
    below e^-80 of its value at 0 beyond the grid."""
    var_w = saddle.var_w
    top = max(float(np.linalg.eigvalsh(Ct)[-1]), 0.0)
    L = math.sqrt(2.0 * var_w * (saddle.P * top + 80.0)) + 8.0 * math.sqrt(var_w)
    w = np.linspace(-L, L, QUADRATURE_NODES)[:, None] * u[None, :]
    lq = _log_q(saddle, np.ascontiguousarray(Ct), w)[0]
    p = np.exp(lq - lq.max())
    p /= p.sum()
    Cq = np.zeros_like(C)
    for k in range(0, len(w), 2048):  # blocks: no nodes x P features at once
        F = saddle._phi(w[k:k + 2048])[:, :saddle.P]
        Cq += (F * p[k:k + 2048, None]).T @ F
    return float(np.linalg.norm(Cq - C) / max(np.linalg.norm(Cq), 1e-300))


def check_modes(saddle, C, Ct, chi):
    """Raise where q_Ct has a separated mode that the saddle's C misses (missed_mode): bounded phi only
    (linear phi's q is Gaussian; relu's density falls along every ray from the origin, so its maxima are
    not separated from the bulk). A one-dimensional q (training inputs on a line) is integrated instead
    (quadrature_gap): the ascent from 1.5 prior sd missed q's mass at |w| > 3, held by a tilt growing out to
    erf's saturation (an outside audit: D = 1, kappa = 1e-3, N = 8, test means 6000 MCSE off the saddle,
    converged)."""
    if saddle.activation != "erf":
        return
    u = training_line(saddle)
    if u is not None:
        if not hasattr(saddle, "_XT"):
            saddle._XT = np.ascontiguousarray(saddle.X.T)
        gap = quadrature_gap(saddle, C, Ct, u)
        if gap > QUADRATURE_RTOL:
            raise ConvergenceError(
                f"adaptive: at chi = {chi:g} the saddle's C is {gap:.2g} (relative) from E_q[phi phi^T] integrated "
                "over the one-dimensional single-neuron law q(w) at its field: its draws missed part of q's mass "
                "(docs/theory.md §6)", {"chi": chi, "quadrature_gap": gap})
        return
    miss = missed_mode(saddle, C, Ct)
    if miss is not None:
        err = MissedModeError(
            f"adaptive: at chi = {chi:g} the single-neuron law q(w) has a separated mode (neurons aligned with the "
            f"field, |w| = {miss['mode_norm']:.3g}, tilt {miss['mode_tilt']:.3g}) holding about "
            f"{miss['mode_mass_fraction']:.3g} of its mass that the saddle's draws never reached, so the fixed "
            "point found is not q's (docs/theory.md §6)", dict(miss, chi=chi))
        err.C = C  # where a solver that weighs the modes (numerics.mixture_saddle) can start
        raise err
