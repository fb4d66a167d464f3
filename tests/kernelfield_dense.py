"""Dense reference for the kernel field's one loop (THEORY §2c), for tests only.

Coordinates v = (C_ii, C_ij for i < j) with the flat measure; S(C), its gradient, Hessian and the
third-derivative contraction written out with numpy from THEORY §2c's action; first-order Laplace
<m> = m + (1/2) m_ij G_ij - (1/2) m_i G_ij S_jkl G_kl with G = H^-1. Everything is P^2 x P^2 (or
worse): an independent check of a structured implementation, usable for P <= 12.
"""
import numpy as np


class DenseKernelField:
    def __init__(self, K, y, N, chi, kappa, g_v):
        self.K, self.y, self.N, self.chi, self.kappa, self.g = K, y, N, chi, kappa, g_v
        self.P = P = K.shape[0]
        self.Kinv = np.linalg.inv(K)
        self.iu = np.triu_indices(P)
        self.n = len(self.iu[0])
        self.basis = []
        for a, b in zip(*self.iu):
            E = np.zeros((P, P))
            E[a, b] = E[b, a] = 1.0
            self.basis.append(E)

    def mat(self, v):
        X = np.zeros((self.P, self.P))
        X[self.iu] = v
        return X + X.T - np.diag(np.diag(X))

    def parts(self, C):
        A = self.g * C + self.kappa * np.eye(self.P)
        Ai = np.linalg.inv(A)
        return np.linalg.inv(C), Ai, Ai @ self.y

    def action(self, C):
        P, N = self.P, self.N
        s1, ld = np.linalg.slogdet(C)
        A = self.g * C + self.kappa * np.eye(P)
        s2, lda = np.linalg.slogdet(A)
        if s1 <= 0 or s2 <= 0:
            return np.inf
        return (-(N - P - 1) / 2 * ld + N / 2 * np.trace(self.Kinv @ C)
                + self.chi / 2 * self.y @ np.linalg.solve(A, self.y) + lda / 2)

    def d1(self, C, X):
        Ci, Ai, al = self.parts(C)
        return (self.N / 2 * np.sum(self.Kinv * X) - (self.N - self.P - 1) / 2 * np.sum(Ci * X)
                - self.chi * self.g / 2 * al @ X @ al + self.g / 2 * np.sum(Ai * X))

    def d2(self, C, X, Y, parts=None):
        Ci, Ai, al = parts or self.parts(C)
        g, c = self.g, (self.N - self.P - 1) / 2
        return (c * np.trace(Ci @ X @ Ci @ Y) - g**2 / 2 * np.trace(Ai @ X @ Ai @ Y)
                + self.chi * g**2 / 2 * (al @ X @ Ai @ Y @ al + al @ Y @ Ai @ X @ al))

    def d3(self, C, X, Y, Z, parts):
        Ci, Ai, al = parts
        g, c = self.g, (self.N - self.P - 1) / 2
        out = -c * (np.trace(Ci @ Z @ Ci @ X @ Ci @ Y) + np.trace(Ci @ X @ Ci @ Z @ Ci @ Y))
        out += g**3 / 2 * (np.trace(Ai @ Z @ Ai @ X @ Ai @ Y) + np.trace(Ai @ X @ Ai @ Z @ Ai @ Y))
        fit = 0.0
        for U, V in ((X, Y), (Y, X)):
            # d/dC along Z of y^T A^-1 U A^-1 V A^-1 y: each A^-1 -> -g A^-1 Z A^-1
            fit += al @ Z @ Ai @ U @ Ai @ V @ al + al @ U @ Ai @ Z @ Ai @ V @ al + al @ U @ Ai @ V @ Ai @ Z @ al
        return out - self.chi * g**3 / 2 * fit

    def gradient(self, C):
        return np.array([self.d1(C, E) for E in self.basis])

    def hessian(self, C):
        pr = self.parts(C)
        H = np.empty((self.n, self.n))
        for k, E in enumerate(self.basis):
            for l in range(k, self.n):
                H[k, l] = H[l, k] = self.d2(C, E, self.basis[l], pr)
        return H

    def saddle(self, C0, tol=1e-13, maxiter=100):
        C = C0.copy()
        for _ in range(maxiter):
            gvec = self.gradient(C)
            H = self.hessian(C)
            step = np.linalg.solve(H, -gvec)
            t, S0 = 1.0, self.action(C)
            while t > 1e-12:
                Cn = C + t * self.mat(step)
                if np.linalg.eigvalsh(Cn)[0] > 0 and self.action(Cn) <= S0 + 1e-14 * abs(S0):
                    break
                t *= 0.5
            C = Cn
            if np.max(np.abs(t * step)) < tol * max(1.0, np.max(np.abs(C))):
                return C
        raise RuntimeError("dense saddle did not converge")

    def one_loop_train_mean(self, C):
        """m(C*) + (1/2) E[d2m[X, X]] - (1/2) dm[X(G v)], v_j = sum_kl G_kl S_jkl, X ~ N(0, G)."""
        pr = self.parts(C)
        Ci, Ai, al = pr
        g, kappa = self.g, self.kappa
        G = np.linalg.inv(self.hessian(C))
        mu, U = np.linalg.eigh(G)
        mats = [self.mat(U[:, r]) for r in range(self.n)]
        m = self.y - kappa * al
        # d m[X] = g kappa A^-1 X alpha, d2 m[X, X] = -2 g^2 kappa A^-1 X A^-1 X alpha
        term1 = sum(mu[r] * (-2 * g**2 * kappa) * Ai @ Xr @ Ai @ Xr @ al for r, Xr in enumerate(mats)) / 2
        v = np.array([sum(mu[r] * self.d3(C, Xr, Xr, E, pr) for r, Xr in enumerate(mats)) for E in self.basis])
        Z = self.mat(G @ v)
        term2 = -0.5 * g * kappa * Ai @ Z @ al
        return m + term1 + term2, m
