"""The kernel field's one loop for any activation (docs/theory.md §2e), dense path.

Coordinates of the field: c_a = C_pq for training pairs p <= q, then Cs_pt for every training point p
and test point t, then each test point's own c**_t = C_tt, which only its variance reads
(d = P(P+1)/2 + P Q + Q; the means need the first P(P+1)/2 + P Q, ``dm``). Derivative tensors arrive
from generated.loop_nonlinear in full index form (T[..., i, j] = d/dC_ij) and are projected here: along
a training coordinate the direction is e_p e_q^T + e_q e_p^T, so the projection sums both orders
(``c_project``); a symmetric d x d matrix G goes back to index form by reading G at the coordinate of
every ordered pair (``c_lift``, ``s_lift``). The cumulants of u = (phi_p phi_q, phi_p phi*_t, phi*_t^2)
are in the conjugate coordinates t, where an off-diagonal direction is (e_p e_q^T + e_q e_p^T)/2:
``t_project`` averages both orders. All of this
is index bookkeeping; the formulas are generated.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from msat import generated

from ..errors import ConvergenceError


class Coordinates:
    """The field's coordinates for P training and Q test points (test-test pairs other than each test
    point's own excluded)."""

    def __init__(self, P: int, Q: int):
        self.P, self.Q = P, Q
        p, q = np.triu_indices(P)
        self.dtr = len(p)
        self.dm = self.dtr + P * Q
        self.d = self.dm + Q
        # coordinate index of every ordered pair of augmented indices (-1: not a coordinate)
        n = P + Q
        self.index = -np.ones((n, n), dtype=int)
        self.index[p, q] = self.index[q, p] = np.arange(self.dtr)
        r, t = np.meshgrid(np.arange(P), np.arange(Q), indexing="ij")
        cs = self.dtr + (r * Q + t)
        self.index[r, P + t] = self.index[P + t, r] = cs
        ts = P + np.arange(Q)
        self.index[ts, ts] = self.dm + np.arange(Q)
        self.pairs = np.concatenate([np.stack([p, q], 1), np.stack([r.ravel(), P + t.ravel()], 1),
                                     np.stack([ts, ts], 1)])
        self.diag = self.pairs[:, 0] == self.pairs[:, 1]

    def own_blocks(self):
        """(Q, P): the coordinates of C*_pt for each test point t, row t (its own block of the field)."""
        return self.dtr + np.arange(self.P)[None, :] * self.Q + np.arange(self.Q)[:, None]

    def unread(self):
        """(d, d) mask of the pairs of coordinates at which OneLoop never reads W'': pairs of C*'s of different
        test points, and c**_t with any but a training coordinate (every product of OneLoop's with them meets
        exact zeros)."""
        if getattr(self, "_unread", None) is None:
            m = np.ones((self.d, self.d), bool)
            m[:self.dtr] = m[:, :self.dtr] = False
            own = self.own_blocks()
            m[own[:, :, None], own[:, None, :]] = False
            self._unread = m
        return self._unread

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

    def s_lift(self, G):
        """Gss[i, t, k, s]: G at the training-test entries (Cs_it, Cs_ks)."""
        ics = self.index[:self.P, self.P:].ravel()
        return G[np.ix_(ics, ics)].reshape(self.P, self.Q, self.P, self.Q)

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


class Propagator:
    """G = (N B - L2)^-1 = H W2 with H = (N 1 - W2 L2)^-1 (generated resolvent_operator), B = W2^-1 never
    formed. L2 lives on the first k (training) coordinates, so N 1 - W2 L2 is block lower triangular,
    [[N - W_kk L, 0], [-W_sk L, N]], and only its k x k block is factorised:
    H = [[R, 0], [W_sk L R / N, 1 / N]], R = (N - W_kk L)^-1. Block algebra only; the operator and
    the loop formula are generated."""

    def __init__(self, W2, L2, N):
        k = L2.shape[0]
        self.k, self.N, self.L2 = k, N, L2
        self.W_sk = W2[k:, :k]
        S = generated.field_loop().resolvent_operator(W2[:k, :k], L2, N)
        self.lu = scipy.linalg.lu_factor(S, check_finite=False)
        if not np.all(np.isfinite(self.lu[0])) or np.min(np.abs(np.diag(self.lu[0]))) == 0.0:
            raise ConvergenceError(
                "adaptive --order 2: the loop's propagator is singular (N 1 - W'' L'' has a zero pivot: the "
                "order-1 saddle is not a minimum of the field's action, docs/theory.md §2e)", {"N": N})
        G_k = scipy.linalg.lu_solve(self.lu, W2[:k], check_finite=False)
        G_s = (W2[k:] + self.W_sk @ (L2 @ G_k)) / N
        G = np.vstack([G_k, G_s])
        self.G = 0.5 * (G + G.T)

    def apply_h(self, v):
        """H v for a vector over all the field's coordinates."""
        v_k = scipy.linalg.lu_solve(self.lu, v[:self.k], check_finite=False)
        return np.concatenate([v_k, (v[self.k:] + self.W_sk @ (self.L2 @ v_k)) / self.N])


class OneLoop:
    """The one loop at the order-1 saddle (C, Cs) for a given W'' (docs/theory.md §2e): everything but the
    third cumulant, which enters only along `Y` (``finish`` takes W'''[Y])."""

    def __init__(self, C, Cs, y, kappa, g_v, chi, N, W2, coords: Coordinates, fit=None):
        """`fit`: another OneLoop's at the same saddle, whose W''-free parts (the fit's A, its Hessian
        L'' and the order-1 means) are reused."""
        gen, lin = generated.field_loop(), generated.linear_adaptation()
        yc = y[:, None]
        d, dtr, P, Q = coords.d, coords.dtr, len(y), Cs.shape[1]
        if fit is None:
            A = _inverse_pd(generated.nonlinear_adaptation().fit_operator(C, kappa, g_v))
            L2 = coords.c_project(gen.fit_hessian(A, yc, chi, g_v), axes=2)
            train0, test0, _ = lin.predictions(C, Cs, np.zeros((Q, 1)), A, A @ yc, g_v, chi)
            fit = (A, L2, (train0[:, 0], test0[:, 0]))
        self.fit = fit
        A, L2, self.order1 = fit
        prop = Propagator(W2, L2, N)
        G = prop.G
        Gcc, Gcs = coords.c_lift(G)
        ell = np.zeros(d)
        ell[:dtr] = coords.c_project(gen.fit_third_contracted(A, yc, Gcc, chi, g_v))
        self._direction = (L2, G[:dtr, :dtr], N)
        m1, m2G = gen.train_mean_derivatives(A, yc, C, Gcc, g_v)
        m1c, m1s, m2Gs = gen.test_mean_derivatives(A, yc, Cs, Gcc, Gcs, g_v)
        v1c, v1s, v1d, v2G = gen.test_variance_derivatives(A, Cs, Gcc, Gcs, coords.s_lift(G), chi, g_v)
        # columns: train means, test means, test variances (the last read c**_t too)
        M1 = np.zeros((d, P + 2 * Q))
        M1[:dtr, :P] = coords.c_project(m1).T
        M1[:dtr, P:P + Q] = coords.c_project(m1c).T
        M1[dtr:coords.dm, P:P + Q] = m1s.reshape(Q, P * Q).T
        M1[:dtr, P + Q:] = coords.c_project(v1c).T
        M1[dtr:coords.dm, P + Q:] = v1s.reshape(Q, P * Q).T
        M1[coords.dm + np.arange(Q), P + Q + np.arange(Q)] = v1d
        spread = gen.output_spread(M1[:, P:P + Q], G)[0] if Q else np.zeros(0)
        self._parts = (gen, prop, M1, np.concatenate([m2G, m2Gs, v2G])[:, None], ell[:, None], P, spread)

    @property
    def Y(self):
        """The direction of W''' (zero off the training block), formed only when asked for: draw sets
        that contract W''' along their union's direction never need their own."""
        return generated.field_loop().cumulant_direction(*self._direction)

    def finish(self, w3):
        """(train, test, (train correction, test correction, test variance correction)) given w3 = W'''[Y].
        The variance's correction is <v_t> - v_t plus the test mean's variance over the field."""
        gen, prop, M1, m2G, ell, P, spread = self._parts
        corr = gen.loop_correction(M1, m2G, prop.G, prop.apply_h(w3)[:, None], ell)[:, 0]
        Q = len(spread)
        return (self.order1[0] + corr[:P], self.order1[1] + corr[P:P + Q],
                (corr[:P], corr[P:P + Q], corr[P + Q:] + spread))


def loop_means(C, Cs, y, kappa, g_v, chi, N, cumulants, coords: Coordinates):
    """Order-2 train and test means: the order-1 saddle's (C, Cs) plus the field's one loop
    (docs/theory.md §2e). Returns (train, test, corrections) with corrections = (train, test, test variance)."""
    loop = OneLoop(C, Cs, y, kappa, g_v, chi, N, cumulants.w2(), coords)
    return loop.finish(cumulants.w3(loop.Y))
