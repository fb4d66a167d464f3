"""Independent reference computations for tests: dense linear algebra on K, no spectral kernels."""
import numpy as np


def dense_conditionals(K, kstar, kss, y, s, chi, kappa, g_v):
    """For each s: log-likelihood -(chi/2) y^T A^-1 y - (1/2) logdet A with A = g_v s K + kappa,
    and the conditional train mean, test mean and test variance of docs/theory.md §2a (dense solves)."""
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


def dense_exact(X, y, X_test, N, chi, kappa, g_v=1.0, g_w=1.0, log_prior=None, width=None):
    """Exact posterior means of a linear network (docs/theory.md §2a) by adaptive quadrature
    (scipy.integrate.quad_vec) over t = ln s of the dense conditionals, with the Gamma(N/2, 2/N)
    prior of s, or ``log_prior(t)`` (the log density of t = ln u, §2d) when given: (train mean,
    test mean, <s>). No spectral code of msat is used."""
    from scipy.integrate import quad_vec
    from scipy.optimize import minimize_scalar

    D = X.shape[1]
    K = g_w / D * X @ X.T
    kstar = g_w / D * X @ X_test.T
    kss = g_w / D * np.einsum("ij,ij->i", X_test, X_test)

    def log_w(t):  # log density of t = ln s: prior exp(-N(s - ln s)/2 - ln s) ds, ds = s dt
        s = np.exp(t)
        loglik = dense_conditionals(K, kstar, kss, y, np.array([s]), chi, kappa, g_v)[0][0]
        return (log_prior(t) if log_prior else -N * (s - t) / 2) + loglik

    t0 = minimize_scalar(lambda t: -log_w(t), bounds=(-20, 20), method="bounded", options={"xatol": 1e-12}).x
    lw0 = log_w(t0)

    def f(t):
        s = np.exp(t)
        _, m, mstar, _ = dense_conditionals(K, kstar, kss, y, np.array([s]), chi, kappa, g_v)
        w = np.exp(log_w(t) - lw0)
        return w * np.concatenate([[1.0, s], m[0], mstar[0]])

    width = width or 40.0 / np.sqrt(N)
    total = quad_vec(f, t0 - width, t0 + width, epsabs=1e-14, epsrel=1e-12, limit=500)[0]
    P = len(y)
    return total[2:2 + P] / total[0], total[2 + P:] / total[0], total[1] / total[0]


def run_cli(argv, capsys):
    """The console run in-process on `argv`: (exit code, stdout, stderr)."""
    from msat.runtime.app import console

    code = console.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
