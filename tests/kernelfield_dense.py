"""Dense reference for the Wishart field's one loop (docs/theory.md §2c), for tests only.

S(F) = -c0 logdet F + tr(Q F) + (chi/2) y^T A^-1 y + (1/2) logdet A, A = g Phi F Phi^T + kappa, and
the readout beta(F) = g F Phi^T A^-1 y, written out with numpy by hand (independently of
derive.kernelfield). Coordinates v = (F_ii, F_ij for i < j) with the flat measure; gradient, Hessian
and the third-derivative contraction built entry by entry; first-order Laplace
<beta> = beta + (1/2) beta_ij G_ij - (1/2) beta_i G_ij S_jkl G_kl with G = H^-1. A test output with
covector p has the variance given F
  v(F) = (g/chi)(p^T F p + s2 - g c*^T A^-1 c* - g (s2/N) tr(A^-1 C)) + g^2 (s2/N) y^T A^-1 C A^-1 y,
c* = Phi F p, C = Phi F Phi^T, and the posterior variance <v> + <m^2> - <m>^2 = v + (1/2) v_ij G_ij
- (1/2) v_i G_ij S_jkl G_kl + m_i G_ij m_j (m = p^T beta). Everything is n^2 x n^2 (or worse): an
independent check of the structured path, usable for n <= 12.
"""
import numpy as np


class DenseField:
    def __init__(self, Phi, Q, c0, y, chi, kappa, g_v):
        self.Phi, self.Q, self.c0 = np.asarray(Phi, float), np.asarray(Q, float), float(c0)
        self.y, self.chi, self.kappa, self.g = np.asarray(y, float), chi, kappa, g_v
        self.n = n = self.Q.shape[0]
        self.iu = np.triu_indices(n)
        self.basis = []
        for a, b in zip(*self.iu):
            E = np.zeros((n, n))
            E[a, b] = E[b, a] = 1.0
            self.basis.append(E)

    @classmethod
    def kernel(cls, K, y, N, chi, kappa, g_v):
        P = K.shape[0]
        return cls(np.eye(P), N / 2 * np.linalg.inv(K), (N - P - 1) / 2, y, chi, kappa, g_v)

    @classmethod
    def weights(cls, X, y, N, chi, kappa, g_v, g_w):
        D = X.shape[1]
        return cls(X, N * D / (2 * g_w) * np.eye(D), (N - D - 1) / 2, y, chi, kappa, g_v)

    def mat(self, v):
        X = np.zeros((self.n, self.n))
        X[self.iu] = v
        return X + X.T - np.diag(np.diag(X))

    def hat(self, X):
        return self.Phi @ X @ self.Phi.T

    def parts(self, F):
        A = self.g * self.hat(F) + self.kappa * np.eye(self.Phi.shape[0])
        Ai = np.linalg.inv(A)
        return np.linalg.inv(F), Ai, Ai @ self.y

    def action(self, F):
        s1, ld = np.linalg.slogdet(F)
        A = self.g * self.hat(F) + self.kappa * np.eye(self.Phi.shape[0])
        s2, lda = np.linalg.slogdet(A)
        if s1 <= 0 or s2 <= 0:
            return np.inf
        return -self.c0 * ld + np.trace(self.Q @ F) + self.chi / 2 * self.y @ np.linalg.solve(A, self.y) + lda / 2

    def d1(self, F, X):
        Fi, Ai, al = self.parts(F)
        Xh = self.hat(X)
        return (np.sum(self.Q * X) - self.c0 * np.sum(Fi * X)
                - self.chi * self.g / 2 * al @ Xh @ al + self.g / 2 * np.sum(Ai * Xh))

    def d2(self, F, X, Y, parts=None):
        Fi, Ai, al = parts or self.parts(F)
        g, c = self.g, self.c0
        Xh, Yh = self.hat(X), self.hat(Y)
        return (c * np.trace(Fi @ X @ Fi @ Y) - g**2 / 2 * np.trace(Ai @ Xh @ Ai @ Yh)
                + self.chi * g**2 / 2 * (al @ Xh @ Ai @ Yh @ al + al @ Yh @ Ai @ Xh @ al))

    def d3(self, F, X, Y, Z, parts):
        Fi, Ai, al = parts
        g, c = self.g, self.c0
        Xh, Yh, Zh = self.hat(X), self.hat(Y), self.hat(Z)
        out = -c * (np.trace(Fi @ Z @ Fi @ X @ Fi @ Y) + np.trace(Fi @ X @ Fi @ Z @ Fi @ Y))
        out += g**3 / 2 * (np.trace(Ai @ Zh @ Ai @ Xh @ Ai @ Yh) + np.trace(Ai @ Xh @ Ai @ Zh @ Ai @ Yh))
        fit = 0.0
        for U, V in ((Xh, Yh), (Yh, Xh)):
            # d/dF along Z of y^T A^-1 U A^-1 V A^-1 y: each A^-1 -> -g A^-1 Zh A^-1
            fit += al @ Zh @ Ai @ U @ Ai @ V @ al + al @ U @ Ai @ Zh @ Ai @ V @ al + al @ U @ Ai @ V @ Ai @ Zh @ al
        return out - self.chi * g**3 / 2 * fit

    def readout(self, F, parts=None):
        Fi, Ai, al = parts or self.parts(F)
        return self.g * F @ self.Phi.T @ al

    def dreadout(self, F, X, parts):
        """dbeta[X] = g X Phi^T alpha - g^2 F Phi^T A^-1 Xh alpha."""
        Fi, Ai, al = parts
        return self.g * X @ self.Phi.T @ al - self.g**2 * F @ self.Phi.T @ Ai @ self.hat(X) @ al

    def d2readout(self, F, X, parts):
        """d2beta[X, X] = -2 g^2 X Phi^T A^-1 Xh alpha + 2 g^3 F Phi^T A^-1 Xh A^-1 Xh alpha."""
        Fi, Ai, al = parts
        Xh = self.hat(X)
        return (-2 * self.g**2 * X @ self.Phi.T @ Ai @ Xh @ al
                + 2 * self.g**3 * F @ self.Phi.T @ Ai @ Xh @ Ai @ Xh @ al)

    def gradient(self, F):
        return np.array([self.d1(F, E) for E in self.basis])

    def hessian(self, F):
        pr = self.parts(F)
        m = len(self.basis)
        H = np.empty((m, m))
        for k, E in enumerate(self.basis):
            for l in range(k, m):
                H[k, l] = H[l, k] = self.d2(F, E, self.basis[l], pr)
        return H

    def saddle(self, F0, tol=1e-13, maxiter=100):
        F = F0.copy()
        for _ in range(maxiter):
            gvec = self.gradient(F)
            H = self.hessian(F)
            step = np.linalg.solve(H, -gvec)
            t, S0 = 1.0, self.action(F)
            while t > 1e-12:
                Fn = F + t * self.mat(step)
                if np.linalg.eigvalsh(Fn)[0] > 0 and self.action(Fn) <= S0 + 1e-14 * abs(S0):
                    break
                t *= 0.5
            F = Fn
            if np.max(np.abs(t * step)) < tol * max(1.0, np.max(np.abs(F))):
                return F
        raise RuntimeError("dense saddle did not converge")

    def variance_parts(self, F, X, p, s2, N, parts):
        """(v, dv[X], d2v[X, X]) of one test output, by the product rule on A^-1 (dM = -g M Xh M)."""
        Fi, M, al = parts
        g = self.g
        Xh, C, cs, dcs = self.hat(X), self.hat(F), self.Phi @ F @ p, self.Phi @ X @ p
        dM = -g * M @ Xh @ M
        d2M = 2 * g**2 * M @ Xh @ M @ Xh @ M
        dal, d2al = dM @ self.y, d2M @ self.y
        t = [(p @ F @ p, p @ X @ p, 0.0),
             (cs @ M @ cs, 2 * dcs @ M @ cs + cs @ dM @ cs, 2 * dcs @ M @ dcs + 4 * dcs @ dM @ cs + cs @ d2M @ cs),
             (np.trace(M @ C), np.trace(dM @ C) + np.trace(M @ Xh), np.trace(d2M @ C) + 2 * np.trace(dM @ Xh)),
             (al @ C @ al, 2 * dal @ C @ al + al @ Xh @ al, 2 * dal @ C @ dal + 2 * d2al @ C @ al + 4 * dal @ Xh @ al)]
        return tuple(g / self.chi * ((k == 0) * s2 + t[0][k] - g * t[1][k] - g * s2 / N * t[2][k])
                     + g**2 * s2 / N * t[3][k] for k in range(3))

    def one_loop_test_variance(self, F, p, s2, N):
        """(posterior variance to first order, v(F*)) of one test output with covector p."""
        pr = self.parts(F)
        G = np.linalg.inv(self.hessian(F))
        ev, U = np.linalg.eigh(G)
        mats = [self.mat(U[:, r]) for r in range(len(ev))]
        v = self.variance_parts(F, mats[0], p, s2, N, pr)[0]
        curv = sum(ev[r] * self.variance_parts(F, Xr, p, s2, N, pr)[2] for r, Xr in enumerate(mats)) / 2
        S3 = np.array([sum(ev[r] * self.d3(F, Xr, Xr, E, pr) for r, Xr in enumerate(mats)) for E in self.basis])
        slope = -0.5 * self.variance_parts(F, self.mat(G @ S3), p, s2, N, pr)[1]
        spread = sum(ev[r] * (p @ self.dreadout(F, Xr, pr))**2 for r, Xr in enumerate(mats))
        return v + curv + slope + spread, v

    def one_loop_readout(self, F):
        """beta(F*) + (1/2) E[d2beta[X, X]] - (1/2) dbeta[X(G v)], v_j = sum_kl G_kl S_jkl, X ~ N(0, G)."""
        pr = self.parts(F)
        G = np.linalg.inv(self.hessian(F))
        ev, U = np.linalg.eigh(G)
        mats = [self.mat(U[:, r]) for r in range(len(ev))]
        beta = self.readout(F, pr)
        term1 = sum(ev[r] * self.d2readout(F, Xr, pr) for r, Xr in enumerate(mats)) / 2
        v = np.array([sum(ev[r] * self.d3(F, Xr, Xr, E, pr) for r, Xr in enumerate(mats)) for E in self.basis])
        term2 = -0.5 * self.dreadout(F, self.mat(G @ v), pr)
        return beta + term1 + term2, beta
