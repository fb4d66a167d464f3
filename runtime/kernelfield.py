"""The kernel field's own loop for linear networks, structured O(P^3) path (THEORY §2c).

Work in the eigenbasis of the saddle C* (A = g_v C + kappa shares it): c_i, d_i = g_v c_i + kappa,
alpha = A^-1 y. The Hessian of S(C) acts on symmetric X as
    H[X] = lam o X + (chi g_v^2/2)(alpha w^T + w alpha^T),  w = A^-1 X alpha,
    lam_ij = ((N-P-1)/2)/(c_i c_j) - (g_v^2/2)/(d_i d_j),
so H^-1 is a Hadamard division plus a P x P (Woodbury) solve. The loop term needs the Gaussian
moments E[X W X], X ~ N(0, H^-1), for W in {C^-1, A^-1, alpha alpha^T}: the Hadamard part in
closed form, the rank-P correction by four matrix products. Nothing of size P^2 x P^2 is formed.
The gradient, the third-derivative contraction and the observable derivatives are the forms of
derive.kernelfield (dS, d3S, dm, d2m) evaluated in this basis; tests compare the whole path with
a dense P^2 x P^2 implementation (tests/kernelfield_dense.py).

Status: Newton saddle and first-order loop term for P <= D (K invertible); the D x D weight-space
field for P > D is not built yet.
"""
from __future__ import annotations

import numpy as np

from .errors import ConvergenceError


class KernelField:
    def __init__(self, K, y, N, chi, kappa, g_v):
        self.K, self.y = np.asarray(K, float), np.asarray(y, float)
        self.P = self.K.shape[0]
        self.N, self.chi, self.kappa, self.g = float(N), float(chi), float(kappa), float(g_v)
        self.c0 = (self.N - self.P - 1) / 2
        self.Kinv = np.linalg.inv(self.K)  # THEORY §2c requires K invertible (D >= P)

    # -- basis quantities ---------------------------------------------------------------------
    def basis(self, C):
        c, V = np.linalg.eigh(C)
        if not c[0] > 0:
            return None
        d = self.g * c + self.kappa
        yt = V.T @ self.y
        alpha = yt / d
        lam = self.c0 / np.outer(c, c) - (self.g**2 / 2) / np.outer(d, d)
        return c, V, d, alpha, lam

    def action(self, C):
        b = self.basis(C)
        if b is None:
            return np.inf
        c, V, d, alpha, lam = b
        yt = V.T @ self.y
        return (-self.c0 * np.sum(np.log(c)) + self.N / 2 * np.sum(self.Kinv * C)
                + self.chi / 2 * np.sum(yt**2 / d) + 0.5 * np.sum(np.log(d)))

    def gradient(self, C, b):
        """G with dS[X] = tr(G X), in the eigenbasis (derive.kernelfield dS)."""
        c, V, d, alpha, lam = b
        G = self.N / 2 * (V.T @ self.Kinv @ V)
        G[np.diag_indices(self.P)] += -self.c0 / c + (self.g / 2) / d
        return G - (self.chi * self.g / 2) * np.outer(alpha, alpha)

    def solve_H(self, R, b):
        """Symmetric X with H[X] = R: Hadamard division plus a P x P solve for w = A^-1 X alpha."""
        c, V, d, alpha, lam = b
        k = self.chi * self.g**2 / 2
        Li = 1.0 / lam
        rhs = ((R * Li) @ alpha) / d
        ML = (np.outer(alpha, alpha) * Li + np.diag(Li @ alpha**2)) / d[:, None]
        w = np.linalg.solve(np.eye(self.P) + k * ML, rhs)
        return (R - k * (np.outer(alpha, w) + np.outer(w, alpha))) * Li

    def saddle(self, C0, tol=1e-12, maxiter=100):
        """Newton for the minimum of S(C) over positive-definite C, backtracking on S."""
        C = 0.5 * (C0 + C0.T)
        S0 = self.action(C)
        if not np.isfinite(S0):
            raise ConvergenceError("kernel field: start is not positive definite", {})
        for it in range(1, maxiter + 1):
            b = self.basis(C)
            V = b[1]
            step = V @ self.solve_H(-self.gradient(C, b), b) @ V.T
            t = 1.0
            while t > 1e-12:
                Cn = C + t * step
                Sn = self.action(Cn)
                if np.isfinite(Sn) and Sn <= S0 + 1e-13 * abs(S0):
                    break
                t *= 0.5
            else:
                raise ConvergenceError("kernel field: line search failed", {"iterations": it})
            C, S0 = 0.5 * (Cn + Cn.T), Sn
            if np.max(np.abs(t * step)) <= tol * max(1.0, np.max(np.abs(C))):
                return C, it
        raise ConvergenceError("kernel field: Newton did not converge", {"iterations": maxiter})

    # -- Gaussian moments ------------------------------------------------------------------------
    def moment(self, W, b, Rw):
        """E[X W X] for X ~ N(0, H^-1) (W in the eigenbasis)."""
        c, V, d, alpha, lam = b
        Lh = 0.5 / lam
        E0 = W.T * Lh + np.diag(Lh @ np.diag(W))
        P1 = (Lh * alpha[None, :]) @ W
        P2 = W @ (alpha[:, None] * Lh)
        T1 = ((Rw * P1) @ Lh) * alpha[None, :]
        T2 = Rw * (P1 @ (alpha[:, None] * Lh))
        T3 = np.outer(alpha, alpha) * (Lh @ (Rw * W) @ Lh)
        T4 = alpha[:, None] * (Lh @ (Rw * P2))
        return E0 - (T1 + T2 + T3 + T4)

    def one_loop(self, C):
        """(<m> to first order, m(C*)) in the original basis (THEORY §2c)."""
        b = self.basis(C)
        c, V, d, alpha, lam = b
        g, kappa = self.g, self.kappa
        Lh = 0.5 / lam
        # Woodbury core: R = (M^-1 + Omega)^-1, M = chi g^2 A^-1, Omega = E0[(X alpha)(X alpha)^T]
        Omega = np.outer(alpha, alpha) * Lh + np.diag(Lh @ alpha**2)
        Rw = np.linalg.inv(np.diag(d) / (self.chi * g**2) + Omega)
        Ci, Ai = np.diag(1.0 / c), np.diag(1.0 / d)
        EA = self.moment(Ai, b, Rw)
        EC = self.moment(Ci, b, Rw)
        Eaa = self.moment(np.outer(alpha, alpha), b, Rw)
        m = V.T @ self.y - kappa * alpha
        term1 = -g**2 * kappa * (Ai @ EA @ alpha)
        p = Ai @ EA @ alpha
        Psi = (-2 * self.c0 * Ci @ EC @ Ci + g**3 * Ai @ EA @ Ai
               - self.chi * g**3 * (np.outer(alpha, p) + np.outer(p, alpha) + Ai @ Eaa @ Ai))
        Z = self.solve_H(0.5 * (Psi + Psi.T), b)
        term2 = -0.5 * g * kappa * (Ai @ Z @ alpha)
        return V @ (m + term1 + term2), V @ m

    def test_mean(self, kstar, m):
        """k*^T K^-1 <m> (exact for the linear network, THEORY §2c)."""
        return kstar.T @ np.linalg.solve(self.K, m)
