"""The kernel field's one loop for any activation (docs/theory.md §2e), dense path.

Coordinates of the field: c_a = C_pq for training pairs p <= q, then Cs_pt for every training point p
and test point t (d = P(P+1)/2 + P Q). Derivative tensors arrive from generated.loop_nonlinear in
full index form (T[..., i, j] = d/dC_ij) and are projected here: along a training coordinate the
direction is e_p e_q^T + e_q e_p^T, so the projection sums both orders (``c_project``); a symmetric
d x d matrix G goes back to index form by reading G at the coordinate of every ordered pair
(``c_lift``). The cumulants of u = (phi_p phi_q, phi_p phi*_t) are in the conjugate coordinates t, where
an off-diagonal direction is (e_p e_q^T + e_q e_p^T)/2: ``t_project`` averages both orders. All of this
is index bookkeeping; the formulas are generated.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from msat import generated

from ..errors import ConvergenceError


class Coordinates:
    """The field's coordinates for P training and Q test points (test-test pairs excluded)."""

    def __init__(self, P: int, Q: int):
        self.P, self.Q = P, Q
        p, q = np.triu_indices(P)
        self.dtr = len(p)
        self.d = self.dtr + P * Q
        # coordinate index of every ordered pair of augmented indices (-1: not a coordinate)
        n = P + Q
        self.index = -np.ones((n, n), dtype=int)
        self.index[p, q] = self.index[q, p] = np.arange(self.dtr)
        r, t = np.meshgrid(np.arange(P), np.arange(Q), indexing="ij")
        cs = self.dtr + (r * Q + t)
        self.index[r, P + t] = self.index[P + t, r] = cs
        self.pairs = np.concatenate([np.stack([p, q], 1), np.stack([r.ravel(), P + t.ravel()], 1)])
        self.diag = self.pairs[:, 0] == self.pairs[:, 1]

    def c_project(self, T, axes=1):
        """Derivatives along the training coordinates from index pairs (sum over both orders): the last
        `axes` pairs of axes of T, (..., P, P)^axes -> (..., dtr)^axes."""
        p, q = self.pairs[:self.dtr].T
        half = np.where(self.diag[:self.dtr], 0.5, 1.0)
        base = T.ndim - 2 * axes
        for k in range(axes):
            i = base + k  # the next pair still in index form (the ones before it are projected)
            U = np.moveaxis(T, (i, i + 1), (0, 1))
            S = (U[p, q] + U[q, p]) * half.reshape((-1,) + (1,) * (U.ndim - 2))
            T = np.moveaxis(S, 0, i)
        return T

    def t_project(self, T):
        """(..., n, n) -> (..., d): the derivative along each conjugate coordinate (mean of both orders)."""
        i, j = self.pairs.T
        return 0.5 * (T[..., i, j] + T[..., j, i])

    def c_lift(self, G):
        """(Gcc[i, j, k, l], Gcs[i, j, k, t]): G at the coordinates of ordered training pairs and
        training-test entries, for contracting with derivative tensors in index form."""
        P, Q = self.P, self.Q
        it = self.index[:P, :P]
        Gcc = G[np.ix_(it.ravel(), it.ravel())].reshape(P, P, P, P)
        ics = self.index[:P, P:]
        Gcs = G[np.ix_(it.ravel(), ics.ravel())].reshape(P, P, P, Q)
        return Gcc, Gcs

    def t_lift(self, Y):
        """Y at every ordered augmented pair, weighted 1/2 per off-diagonal pair (0 off the coordinates):
        the index form of sum_ab Y_ab d/dt_a d/dt_b."""
        idx = self.index.ravel()
        w = np.where(idx >= 0, 1.0, 0.0)
        w = np.where(np.eye(self.P + self.Q).ravel() > 0, w, 0.5 * w)
        full = Y[np.ix_(np.maximum(idx, 0), np.maximum(idx, 0))] * np.outer(w, w)
        n = self.P + self.Q
        return full.reshape(n, n, n, n)


class GaussianCumulants:
    """Cumulants of u under h ~ N(0, Kq) over the training and test points (linear networks: the tilted
    law is Gaussian), from the generated derivatives of -(1/2) logdet(I - 2 Kq T)."""

    def __init__(self, Kq, coords: Coordinates):
        self.Kq, self.coords = Kq, coords
        self.gen = generated.field_loop()

    def w2(self):
        W = self.gen.gaussian_w2(self.Kq)
        return self.coords.t_project(np.moveaxis(self.coords.t_project(W), -1, 0))

    def w3(self, Y):
        """The third cumulant along Y given on the first k coordinates (zero elsewhere)."""
        full = np.zeros((self.coords.d, self.coords.d))
        full[:len(Y), :len(Y)] = Y
        return self.coords.t_project(self.gen.gaussian_w3(self.Kq, self.coords.t_lift(full)))


def _inverse_pd(M):
    """The inverse of a symmetric positive definite matrix through its Cholesky factor."""
    cf = scipy.linalg.cho_factor(M, lower=True)
    return scipy.linalg.cho_solve(cf, np.eye(M.shape[0]))


def loop_means(C, Cs, y, kappa, g_v, chi, N, cumulants, coords: Coordinates):
    """Order-2 train and test means: the order-1 saddle's (C, Cs) plus the field's one loop
    (docs/theory.md §2e). Returns (train, test, corrections) with corrections = (train, test)."""
    gen, lin = generated.field_loop(), generated.linear_adaptation()
    A = _inverse_pd(generated.nonlinear_adaptation().fit_operator(C, kappa, g_v))
    yc = y[:, None]
    d, dtr = coords.d, coords.dtr
    try:
        B = _inverse_pd(cumulants.w2())
    except np.linalg.LinAlgError:
        raise ConvergenceError(
            "adaptive --order 2: the field's coordinates are degenerate (the covariance of phi phi^T over the "
            "neuron law is singular: repeated input points, or a linear network with P + P_test > D); the "
            "loop needs a non-degenerate field (docs/theory.md §2e)", {"field_dimension": coords.d}) from None
    L2 = np.zeros((d, d))
    L2[:dtr, :dtr] = coords.c_project(gen.fit_hessian(A, yc, chi, g_v), axes=2)
    G = np.linalg.inv(gen.field_hessian(B, L2, N))
    G = 0.5 * (G + G.T)
    Gcc, Gcs = coords.c_lift(G)
    ell = np.zeros(d)
    ell[:dtr] = coords.c_project(gen.fit_third_contracted(A, yc, Gcc, chi, g_v))
    w3 = cumulants.w3(gen.cumulant_direction(L2[:dtr, :dtr], G[:dtr, :dtr], N))  # Y is zero off this block
    m1, m2G = gen.train_mean_derivatives(A, yc, C, Gcc, g_v)
    m1c, m1s, m2Gs = gen.test_mean_derivatives(A, yc, Cs, Gcc, Gcs, g_v)
    M1 = np.zeros((d, len(y) + Cs.shape[1]))
    M1[:dtr, :len(y)] = coords.c_project(m1).T
    M1[:dtr, len(y):] = coords.c_project(m1c).T
    M1[dtr:, len(y):] = m1s.reshape(Cs.shape[1], Cs.shape[0] * Cs.shape[1]).T
    corr = gen.loop_correction(M1, np.concatenate([m2G, m2Gs])[:, None], G, B, w3[:, None], ell[:, None])[:, 0]
    train0, test0, _ = lin.predictions(C, Cs, np.zeros((Cs.shape[1], 1)), A, A @ yc, g_v, chi)
    P = len(y)
    return train0[:, 0] + corr[:P], test0[:, 0] + corr[P:], (corr[:P], corr[P:])
