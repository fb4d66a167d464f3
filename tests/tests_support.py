"""Independent reference computations for tests: dense linear algebra on K, no spectral kernels."""
import numpy as np


def dense_conditionals(K, kstar, kss, y, s, chi, kappa, g_v):
    """For each s: log-likelihood -(chi/2) y^T A^-1 y - (1/2) logdet A with A = g_v s K + kappa,
    and the conditional train mean, test mean and test variance of THEORY §2a (dense solves)."""
    P = K.shape[0]
    A = g_v * s[:, None, None] * K[None] + kappa * np.eye(P)[None]
    sign, logdet = np.linalg.slogdet(A)
    alpha = np.linalg.solve(A, np.broadcast_to(y, (len(s), P))[..., None])[..., 0]
    loglik = -(chi / 2) * np.einsum("i,si->s", y, alpha) - 0.5 * logdet
    m = g_v * s[:, None] * np.einsum("ij,sj->si", K, alpha)
    mstar = g_v * s[:, None] * np.einsum("it,si->st", kstar, alpha)
    B = np.linalg.solve(A, np.broadcast_to(kstar, (len(s),) + kstar.shape))
    quad = np.einsum("it,sit->st", kstar, B)
    vstar = (g_v * s[:, None] / chi) * (kss[None] - g_v * s[:, None] * quad)
    return loglik, m, mstar, vstar
