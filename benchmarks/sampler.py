"""Sampler benchmarks (issue 4), measured in one run.

(a) HMC gradient evaluations per second: msat's numba HMC (numerics.hmc with the generated log
    posterior) vs a plain NumPy
    implementation of the same HMC (same model, same leapfrog, vectorised NumPy gradient),
    P = 20, D = 20, N = 50. Target >= 5x.
(b) theory vs sampler at P = 100, N = 500 (linear network, chi = 1 and chi = N): the time the
    sampler would need to reach the accuracy of the loop theory (order 2), extrapolated from the
    measured ESS per second, over the time of the theory's predict call. Target >= 1000x.

    python benchmarks/sampler.py [--quick]
"""
import argparse
import math
import time

import numpy as np

from msat.generated import densities
from msat.runtime import data, spectral
from msat.runtime.methods import exact
from msat.runtime.numerics import chains, hmc
from msat.runtime import predict


def numpy_hmc(W, a, X, y, chi, kappa, g_v, g_w, m_W, m_a, eps, n_leap, n_iter, rng):
    """The same HMC as the generated kernel (linear phi), written with NumPy arrays."""
    N, D = W.shape

    phi = lambda h: h  # noqa: E731  (linear; the chain rule below is the general one)
    dphi = lambda h: np.ones_like(h)  # noqa: E731

    def logp_grad(W, a):
        H = W @ X.T
        Phi = phi(H)
        f = a @ Phi
        r = y - f
        lp = -(chi / (2 * kappa)) * r @ r - (chi * N / (2 * g_v)) * a @ a - (D / (2 * g_w)) * np.sum(W * W)
        s = (chi / kappa) * r
        ga = Phi @ s - (chi * N / g_v) * a
        gW = (a[:, None] * s[None, :] * dphi(H)) @ X - (D / g_w) * W
        return lp, gW, ga

    lp, gW, ga = logp_grad(W, a)
    for _ in range(n_iter):
        pW = rng.standard_normal(W.shape) * math.sqrt(m_W)
        pa = rng.standard_normal(a.shape) * math.sqrt(m_a)
        H0 = -lp + 0.5 * (np.sum(pW**2) / m_W + pa @ pa / m_a)
        W1, a1, gW1, ga1, lp1 = W.copy(), a.copy(), gW, ga, lp
        for _ in range(n_leap):
            pW += 0.5 * eps * gW1
            pa += 0.5 * eps * ga1
            W1 += eps * pW / m_W
            a1 += eps * pa / m_a
            lp1, gW1, ga1 = logp_grad(W1, a1)
            pW += 0.5 * eps * gW1
            pa += 0.5 * eps * ga1
        H1 = -lp1 + 0.5 * (np.sum(pW**2) / m_W + pa @ pa / m_a)
        if rng.random() < math.exp(min(0.0, H0 - H1)):
            W, a, gW, ga, lp = W1, a1, gW1, ga1, lp1
    return W, a


def bench_gradients(P, D, N, n_iter):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((P, D))
    y = np.sign(X[:, 0])
    chi, kappa, g_v, g_w = 1.0, 0.5, 1.0, 1.0
    W = rng.standard_normal((N, D)) / math.sqrt(D)
    a = rng.standard_normal(N) / math.sqrt(N)
    m_W, m_a, eps, n_leap = D / g_w, chi * N / g_v, 0.05, 10
    act = densities.ACTIVATIONS.index("linear")
    e = np.empty((1, 1))

    def gen(n):
        hmc.leapfrog_chain(W.copy(), a.copy(), X, y, np.zeros((0, D)), np.zeros((0, D)), chi, kappa, g_v, g_w, act, m_W, m_a,
            eps, n_leap, n, 0.0, np.random.default_rng(1), False, False, e, e, e, np.empty(1), np.empty(n), np.zeros((D, D)),
            np.zeros((P, P)), np.zeros((n, 2)))

    gen(2)  # compile / load from cache
    t = time.perf_counter()
    gen(n_iter)
    t_gen = time.perf_counter() - t
    t = time.perf_counter()
    numpy_hmc(W.copy(), a.copy(), X, y, chi, kappa, g_v, g_w, m_W, m_a, eps, n_leap, n_iter // 10,
              np.random.default_rng(1))
    t_np = (time.perf_counter() - t) * 10
    grads = n_iter * n_leap
    print(f"(a) P={P}, D={D}, N={N}: generated {grads / t_gen:,.0f} gradient steps/s, NumPy "
          f"{grads / t_np:,.0f} /s: speed-up {t_np / t_gen:.1f}x (target >= 5x)")


def bench_theory_vs_sampler(P, D, N, samples):
    ds = data.builtin("ising", P=P, D=D, P_test=10, seed=0)
    spec = spectral.spectrum(ds.X, ds.y, ds.X_test, 1.0)
    for chi in (1.0, float(N)):
        ex = exact.moments(spec, N, chi, 0.5, 1.0)
        t = time.perf_counter()
        th = predict(ds.X, ds.y, ds.X_test, N=N, chi=chi, kappa=0.5, method="loop", order=2, dressed=True)
        t_theory = time.perf_counter() - t
        err = float(np.max(np.abs(np.array(th["test_mean"]) - ex["test_mean"])))
        t = time.perf_counter()
        ch = hmc.run_chains(ds.X, ds.y, ds.X_test, N=N, chi=chi, kappa=0.5, samples=samples, chains=2,
                            seed=0, accumulate_w=False)
        t_sample = time.perf_counter() - t
        s = chains.summarise(ch, ds.X, ds.y, 0.5, 1.0)
        d = chains.diagnostics(ch, "test")
        ess = float(np.min(d["ess_bulk"]))
        sd = float(np.max(np.sqrt(s["test_var"])))
        # MCSE = sd / sqrt(ESS) must reach the theory's error: ESS_needed = (sd / err)^2
        ess_needed = (sd / max(err, 1e-16)) ** 2
        t_needed = t_sample * ess_needed / ess
        print(f"(b) P={P}, D={D}, N={N}, chi={chi:g}: theory (loop o2 dressed) {t_theory * 1e3:.1f} ms, "
              f"error {err:.1e}; sampler {t_sample:.1f} s for ESS {ess:.0f} -> {t_needed:.3g} s to reach "
              f"MCSE = error; ratio {t_needed / t_theory:.3g}x (target >= 1000x)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    bench_gradients(20, 20, 50, 400 if args.quick else 2000)
    if args.quick:
        bench_theory_vs_sampler(30, 30, 100, 300)
    else:
        bench_theory_vs_sampler(100, 100, 500, 1000)


if __name__ == "__main__":
    main()
