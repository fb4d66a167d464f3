"""The Wishart field's own loop for linear networks, structured O(n^3) path (docs/theory.md §2c).

Two exact representations, one action (derive.kernelfield):
  kernel field  F = C (P x P, needs K invertible)     ``WishartField.kernel``
  weight field  F = S_w (D x D, any P and D)           ``WishartField.weights``
``WishartField.for_data`` picks the smaller one (the weight field when P >= D or K is singular).

Everything happens in the basis T with F = T T^T and T^T Phi^T A^-1 Phi T = diag(mu): T comes from
one eigendecomposition of F and the SVD of Phi F^1/2 (an n x n or P x D problem, never P^2 x P^2).
The formulas are generated (msat.generated.kernel_field): the basis forms, the action, the
gradient, the Hessian (a Hadamard weight plus one low-rank term), its Woodbury solve, the Gaussian
moments E[X W X] of the loop, the loop source, the readout loop term and the outputs. This module
holds the plumbing: eigendecompositions, SVDs, the n x n solves, the Newton iteration. Tests
compare the whole path with a dense n^2 x n^2 reference (tests/kernelfield_dense.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from msat import generated

from ..errors import ConvergenceError
from ..spectral import linear_kernels

_gen = generated.wishart_field()


@dataclass
class Basis:
    """Basis quantities at a field value F: T (n x n), mu, b, the action S(F), and the nonzero
    eigenvalues sig2 of C = Phi F Phi^T with y's components yU along their eigenvectors."""

    T: np.ndarray
    mu: np.ndarray
    b: np.ndarray
    S: float
    sig2: np.ndarray
    yU: np.ndarray


class WishartField:
    """S(F) = -c0 logdet F + tr(Q F) + (chi/2) y^T A^-1 y + (1/2) logdet A, A = g_v Phi F Phi^T + kappa."""

    def __init__(self, Phi, Q, c0, y, chi, kappa, g_v, n, name):
        # Phi None: the identity (kernel field); Q = (T -> T^T Q T, F -> tr(Q F))
        self.Phi, (self.Q_apply, self.Q_trace) = Phi, Q
        self.c0, self.y = float(c0), np.asarray(y, float)
        self.chi, self.kappa, self.g = float(chi), float(kappa), float(g_v)
        self.n, self.name = n, name
        self.P = self.y.shape[0]

    @classmethod
    def kernel(cls, K, y, N, chi, kappa, g_v):
        """The P x P kernel field C (docs/theory.md §2c); K must be invertible (P <= D)."""
        K = np.asarray(K, float)
        c0, q = _gen.prior_kernel(N, K.shape[0])
        cho = cho_factor(K)
        Qm = q * cho_solve(cho, np.eye(K.shape[0]))  # the action holds K^-1 itself (docs/theory.md §2c)
        f = cls(None, (lambda T: T.T @ (Qm @ T), lambda F: np.sum(Qm * F)), c0, y, chi, kappa, g_v,
                K.shape[0], "kernel")
        f.K_cho = cho
        return f

    @classmethod
    def weights(cls, X, y, N, chi, kappa, g_v, g_w):
        """The D x D weight field S_w, C = X S_w X^T (docs/theory.md §2c); any P and D."""
        X = np.asarray(X, float)
        D = X.shape[1]
        c0, q = _gen.prior_weights(N, D, g_w)
        f = cls(X, (lambda T: q * (T.T @ T), lambda F: q * np.trace(F)), c0, y, chi, kappa, g_v, D, "weights")
        f.prior_scale = c0 / q  # the saddle of the prior alone: F = (c0/q) I
        # X = Q R once: every basis then factors R F^1/2 (min(P, D) x D) instead of X F^1/2 (P x D), with y's
        # components Q^T y; an outside audit measured 0.36 s per basis at P = 1e5, D = 10, 21 of them per ladder
        Qx, f.R = np.linalg.qr(X)
        f.yQ, f.y2 = Qx.T @ f.y, float(f.y @ f.y)
        return f

    @classmethod
    def for_data(cls, X, y, N, chi, kappa, g_v, g_w, full_rank=True):
        """The smaller representation: the kernel field when P < D and K is invertible
        (``full_rank``), else the weight field."""
        P, D = X.shape
        if P < D and full_rank:
            return cls.kernel(linear_kernels(X, None, g_w)[0], y, N, chi, kappa, g_v)
        return cls.weights(X, y, N, chi, kappa, g_v, g_w)

    # -- basis ------------------------------------------------------------------------------------
    def basis(self, F):
        """Basis at F, or None when F is not positive definite."""
        f, V = np.linalg.eigh(F)
        if not f[0] > 0:
            return None
        L = V * np.sqrt(f)
        if self.Phi is None:
            sig, T = np.sqrt(f), L
            yU = V.T @ self.y
            y2 = self.y @ self.y
        else:  # Phi F^1/2 = Q (R F^1/2): its left singular vectors are Q's times those of R F^1/2
            U, sig, Wt = np.linalg.svd(self.R @ L, full_matrices=self.R.shape[0] < self.n)
            T = L @ Wt.T
            yU, y2 = U[:, :sig.shape[0]].T @ self.yQ, self.y2
        r = sig.shape[0]
        mu, b = np.zeros(self.n), np.zeros(self.n)
        y_null2 = max(y2 - yU @ yU, 0.0)  # y outside the range of C
        mu[:r], b[:r], yAy, logdet_A = _gen.basis_forms(sig, yU, y_null2, self.P - r, self.kappa, self.g)
        S = _gen.action(np.sum(np.log(f)), self.Q_trace(F), yAy, logdet_A, self.c0, self.chi)
        return Basis(T, mu, b, S, sig**2, yU)

    def action(self, F):
        bs = self.basis(F)
        return np.inf if bs is None else bs.S

    # -- Hessian solves and Gaussian moments ------------------------------------------------------
    def hessian(self, bs):
        return _gen.hessian(bs.mu, self.c0, self.chi, self.g)

    def solve_H(self, R, bs, lam, k):
        """Symmetric Z with H[Z] = R, H[Z] = lam o Z + (k/2)(b w^T + w b^T), w = diag(mu) Z b:
        the generated n x n system for w (Woodbury), then Z."""
        _, Li = _gen.hadamard_inverses(lam)
        S, rhs = _gen.hessian_system(R, Li, bs.b, bs.mu, k / 2)
        return _gen.hessian_field(R, Li, bs.b, np.linalg.solve(S, rhs), k / 2)

    def moments(self, bs, lam, k):
        """The Gaussian moments E[X W X], X ~ N(0, H^-1), of the loop (generated.loop_moment_weights)."""
        Lh, _ = _gen.hadamard_inverses(lam)
        S, rhs = _gen.woodbury_system(Lh, bs.b, bs.mu, k)
        R = np.linalg.solve(S, rhs)  # the Woodbury core
        return [_gen.gaussian_moment(W, Lh, bs.b, R) for W in _gen.loop_moment_weights(bs.mu, bs.b)]

    # -- saddle and loop --------------------------------------------------------------------------
    def saddle(self, F0, tol=1e-12, maxiter=100):
        """Newton for the minimum of S(F) over positive-definite F, backtracking on S."""
        F = 0.5 * (F0 + F0.T)
        bs = self.basis(F)
        if bs is None:
            raise ConvergenceError(f"{self.name} field: start is not positive definite", {})
        for it in range(1, maxiter + 1):
            lam, k = self.hessian(bs)
            G = _gen.gradient(self.Q_apply(bs.T), bs.mu, bs.b, self.c0, self.chi, self.g)
            step = bs.T @ self.solve_H(-G, bs, lam, k) @ bs.T.T
            t = 1.0
            while t > 1e-12:
                Fn = 0.5 * ((F + t * step) + (F + t * step).T)
                bn = self.basis(Fn)
                if bn is not None and bn.S <= bs.S + 1e-13 * abs(bs.S):
                    break
                t *= 0.5
            else:
                raise ConvergenceError(f"{self.name} field: line search failed", {"iterations": it})
            F, bs = Fn, bn
            if np.max(np.abs(t * step)) <= tol * max(1.0, np.max(np.abs(F))):
                return F, it
        raise ConvergenceError(f"{self.name} field: Newton did not converge", {"iterations": maxiter})

    def loop(self, F):
        """(basis, Gaussian moments E[X W X], Z = H^-1 Psi) at the saddle F: what the readout's and the test
        variance's one loop share (docs/theory.md §2c)."""
        bs = self.basis(F)
        lam, k = self.hessian(bs)
        E = self.moments(bs, lam, k)
        Psi = _gen.loop_source(*E, bs.mu, bs.b, self.c0, self.chi, self.g)
        return bs, E, self.solve_H(Psi, bs, lam, k)

    def one_loop(self, F, loop=None):
        """(<beta> to first order, beta(F*)): readout weights in field coordinates (docs/theory.md §2c)."""
        bs, E, Z = loop or self.loop(F)
        beta1, beta0 = _gen.readout_one_loop(*E, Z, bs.mu, bs.b, self.g)
        return bs.T @ beta1, bs.T @ beta0

    def test_covectors(self, X_test, kstar=None, kss=None):
        """(p, s2) of the test points (columns of p): the test mean given F is p^T beta(F). Weight field:
        p = x*, s2 = 0; kernel field: p = K^-1 k* (a solve with K's Cholesky factor) and s2 = k** - k*^T K^-1 k*,
        the test features' variance given the training ones (docs/theory.md §2c)."""
        if self.Phi is not None:
            X_test = np.zeros((0, self.n)) if X_test is None else np.asarray(X_test, float)
            return X_test.T, np.zeros(X_test.shape[0])
        p = cho_solve(self.K_cho, kstar)
        s2 = _gen.test_feature_variance(kstar, p, np.asarray(kss, float)[:, None])[:, 0]
        return p, np.maximum(s2, 0.0)  # s2 >= 0; round-off can dip below

    def test_variance(self, loop, p, s2, N):
        """(variance at one loop, variance at the saddle) of each test output: E_F[v] + Var_F[p^T beta] to
        first order (docs/theory.md §2c; generated test_variance_one_loop)."""
        bs, E, Z = loop
        U = bs.T.T @ p  # the covectors in the basis
        out = np.array([_gen.test_variance_one_loop(*E, Z, U[:, t], s2[t], bs.mu, bs.b, N, self.chi, self.g)
                        for t in range(U.shape[1])]).reshape(-1, 2)
        return out[:, 0], out[:, 1]

    # -- outputs ----------------------------------------------------------------------------------
    def outputs(self, beta, X_test, kstar):
        """(train mean, test mean) from the readout: k*^T K^-1 beta (kernel field) or X* beta
        (weight field), both exact for linear networks (generated outputs_*)."""
        if self.Phi is None:
            return _gen.outputs_kernel(beta, cho_solve(self.K_cho, beta), kstar)
        return _gen.outputs_weights(self.Phi, X_test, beta)

    def kernel_spectrum(self, F):
        """(nonzero eigenvalues of C = Phi F Phi^T, largest first; y^T C y), without forming C:
        C = (Phi F^1/2)(Phi F^1/2)^T, so its eigenvalues are the squared singular values."""
        bs = self.basis(F)
        order = np.argsort(bs.sig2)[::-1]
        return bs.sig2[order], float(np.sum(bs.sig2 * bs.yU**2))

    def start_from_kernel(self, C):
        """F with Phi F Phi^T = C (C in the range of Phi, as every linear-network kernel is)."""
        if self.Phi is None:
            return C
        A = np.linalg.lstsq(self.Phi, C, rcond=None)[0]
        return self._completed(np.linalg.lstsq(self.Phi, A.T, rcond=None)[0])

    def start_from_factor(self, U, B):
        """start_from_kernel(U B U^T) without forming the P x P kernel (U: P x r, B: r x r)."""
        if self.Phi is None:
            return U @ B @ U.T  # the kernel field itself is P x P (P < D)
        A = np.linalg.lstsq(self.Phi, U, rcond=None)[0]
        return self._completed(A @ B @ A.T)

    def _completed(self, F):
        # directions X cannot see (P < D) keep a prior-sized variance so that F is positive definite
        null = np.eye(self.n) - np.linalg.lstsq(self.Phi, self.Phi, rcond=None)[0]
        F = F + np.trace(F) / self.n * null
        if not np.trace(F) > 0:  # C = 0 (X = 0): start from the prior's own saddle
            F = self.prior_scale * np.eye(self.n)
        return 0.5 * (F + F.T)
