"""Stein control variates for the test moments of the adapted single-neuron law (docs/theory.md §6):
an experimental estimator, measured by benchmarks/stein_controls.py and not used by msat yet.

Stein's identity: for a smooth vector field g that the tails of q suppress,
E_q[div g + g . grad log q] = 0. On the span of the training inputs (orthonormal directions u_k,
k = 1..r), the fields g = u_k (u_l . w) give the mean-zero controls

    c_kl(w) = delta_kl + (u_l . w) (u_k . grad log q(w)),

with grad log q generated (densities.neuron_scores). They are even in w, like the moments they
control. Most of their power comes from the few directions along which q departs from its prior
(feature learning), so k or l runs over the m directions of q's second moment furthest from the
prior's: 2mr - m^2 controls.

Near mean-field scaling the test means' Monte Carlo error comes from C* = E_q[phi phi*^T] (its
fixed-point partner C is better determined), so C* and c** are refined: the weighted estimate
sum_i w_i f_i (plus the Gaussian control of numerics.reweighted_saddle where the draws carry it)
becomes sum_i w_i (f_i - beta^T c_i) - gamma (Gaussian control's residual), the coefficients fitted by
least squares on the draws' influence on the estimate. Fitted on the same draws they bias it by
O(controls / effective draws), which near mean field is as large as the noise removed; so they are
cross-fitted: each half of the draws is corrected with the coefficients of the other half.
"""
from __future__ import annotations

import numpy as np

from msat.generated import densities

#: directions of q's second moment (furthest from the prior's) that the controls are built on
DIRECTIONS = 2
#: draws per block of the accumulated normal equations
BLOCK = 4096


def _directions(saddle, W, w):
    """The span's orthonormal basis, rotated so that its first columns are the eigenvectors of q's
    weighted second moment furthest (in log ratio) from the prior variance."""
    Q = saddle.test_split()[2]
    Wp = W @ Q
    S = Wp.T @ (Wp * w[:, None])
    lam, U = np.linalg.eigh(0.5 * (S + S.T))
    order = np.argsort(-np.abs(np.log(np.maximum(lam, 1e-300) / saddle.var_w)))
    return Q @ U[:, order]


def _controls(saddle, Ct, W, basis, m):
    """c(w) for the rows of W: c_kl with k < m (every l), then with l < m and k >= m."""
    score = np.empty_like(W)
    densities.neuron_scores(np.ascontiguousarray(W), saddle.X, np.ascontiguousarray(Ct), float(saddle.D),
                            saddle.g_w, saddle._act, score)
    v, s = W @ basis, score @ basis
    first = s[:, :m, None] * v[:, None, :] + np.eye(m, v.shape[1])[None]
    second = s[:, None, m:] * v[:, :m, None]
    return np.hstack([first.reshape(len(W), -1), second.reshape(len(W), -1)])


def test_moments(P):
    """f(w) per draw for C* and c**: phi_p phi*_t (smoothed test features), then phi*_t^2 (plain)."""
    return lambda F, Fv: np.hstack([(F[:, :P, None] * F[:, None, P:]).reshape(len(F), -1), Fv ** 2])


def train_moments(P):
    """f(w) per draw for C: phi_p phi_q."""
    return lambda F, Fv: (F[:, :P, None] * F[:, None, :P]).reshape(len(F), -1)


class _Fold:
    """One half of the draws: its own weighted means and the least-squares system of the influence
    y_i = M w_i (f_i - mean) on the controls z_i = M w_i c_i and the Gaussian residual g_i = f_i - E_G f."""

    def __init__(self, saddle, Ct, W, F, Fv, w, basis, m, EG, moments=None):
        moments = moments or test_moments(saddle.P)
        self.mass = float(w.sum())
        w = w / self.mass
        M = len(w)
        self.mu0 = w @ moments(F, Fv)
        k, K = 2 * m * basis.shape[1] - m * m, len(self.mu0)
        zz, zy, zg = np.zeros((k, k)), np.zeros((k, K)), np.zeros((k, K))
        z1, y1, g1, gg, gy = np.zeros(k), np.zeros(K), np.zeros(K), np.zeros(K), np.zeros(K)
        zw = np.zeros(k)
        for s in range(0, M, BLOCK):
            sl = slice(s, s + BLOCK)
            c = _controls(saddle, Ct, W[sl], basis, m)
            f = moments(F[sl], Fv[sl])
            Mw = M * w[sl]
            z, y = c * Mw[:, None], (f - self.mu0) * Mw[:, None]
            zw += w[sl] @ c
            zz += z.T @ z
            zy += z.T @ y
            z1 += z.sum(0)
            y1 += y.sum(0)
            if EG is not None:
                g = f - EG
                zg += z.T @ g
                g1 += g.sum(0)
                gg += np.einsum("ij,ij->j", g, g)
                gy += np.einsum("ij,ij->j", g, y)
        self.zbar = zw  # the weighted mean of the controls (zero in expectation)
        self.gbar = g1 / M  # the Gaussian control's residual (zero in expectation under the proposal)
        zm, ym, gm = z1 / M, y1 / M, g1 / M
        self.A = zz - M * np.outer(zm, zm)
        self.b = zy - M * np.outer(zm, ym)
        self.u = zg - M * np.outer(zm, gm)
        self.gg = gg - M * gm * gm
        self.gy = gy - M * gm * ym
        self.gaussian = EG is not None

    def coefficients(self):
        """(beta, gamma): the least-squares fit of the influence on the controls."""
        Ai = np.linalg.pinv(self.A, rcond=1e-12)
        gamma = np.zeros(len(self.mu0))
        if self.gaussian:
            # the Gaussian control's coefficient per moment, with the Stein coefficients profiled out
            num = self.gy - np.einsum("kj,kj->j", self.u, Ai @ self.b)
            den = self.gg - np.einsum("kj,kj->j", self.u, Ai @ self.u)
            gamma = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
        return Ai @ (self.b - self.u * gamma), gamma

    def corrected(self, beta, gamma):
        return self.mu0 - self.zbar @ beta - gamma * self.gbar


def cross_fitted(saddle, Ct, W, F, Fv, w, EG, moments):
    """The cross-fitted estimate of E_q[moments] (EG: their expectations under the Gaussian proposal
    the draws come from, or None for draws of q itself)."""
    M = len(w)
    w = w / w.sum()
    basis = _directions(saddle, W, w)
    m = min(DIRECTIONS, basis.shape[1])
    halves = [slice(0, M // 2), slice(M // 2, M)]
    folds = [_Fold(saddle, Ct, W[h], F[h], Fv[h], w[h], basis, m, EG, moments) for h in halves]
    fits = [f.coefficients() for f in folds]
    return sum(f.mass * f.corrected(*fits[1 - i]) for i, f in enumerate(folds)) / sum(f.mass for f in folds)


def refine(saddle, Ct, W, F, Fv, w, control, Cs, css):
    """(C*, c**) with the Stein controls (and the Gaussian control) cross-fitted: W the draws' neurons,
    F their features (training points, then the smoothed test features), Fv the test points' plain
    features, w their weights (targeting q_Ct), `control` the Gaussian control's (C, C*, c**) parts
    the estimates Cs and css carry (zero for draws of q itself)."""
    P, Q, M = saddle.P, Fv.shape[1], len(w)
    if Q == 0 or M < 4 or W is None:
        return Cs, css
    shift = np.concatenate([np.ravel(control[1]) * np.ones(P * Q), np.ravel(control[2]) * np.ones(Q)])
    EG = None
    if np.any(shift != 0):
        # E_G f = the estimate's Gaussian control plus the plain mean of f over all draws
        fm = test_moments(P)
        fbar = sum(fm(F[s:s + BLOCK], Fv[s:s + BLOCK]).sum(0) for s in range(0, M, BLOCK)) / M
        EG = shift + fbar
    est = cross_fitted(saddle, Ct, W, F, Fv, w, EG, test_moments(P))
    return est[:P * Q].reshape(P, Q), est[P * Q:]
