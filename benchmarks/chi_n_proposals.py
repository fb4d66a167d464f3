"""At chi = N, would a better proposal cut the noise of erf kernel adaptation's single-neuron Monte Carlo?
(report; issue 13, docs/theory.md §6)

Teacher task, P points, D = 1.5 P, 20 test points, kappa = 0.2, N = 4P, warm-started ladder 1, sqrt N, N,
order 1. At chi = N, with the field Ct of the solution and MALA draws of its tilted law q (the final draws
msat uses there):
 (a) q's shape: the top eigenvalues of its second moment in prior variances, and its marginal along the
     top direction;
 (b) the effective fraction of importance weights to q of --draws fresh draws of each candidate proposal:
     the Gaussian with q's second moment (msat's candidate, refused below an effective fraction of 0.3),
     a symmetric two-Gaussian mixture at +-m fitted by weighted EM (q is even in w for erf), and a 1-D
     kernel density along the top direction times a Gaussian across it;
 (c) the decision: over --sets independent sets of --draws draws, the spread of a test functional
     E_q[phi(x*.w) phi(Xw).alpha] (alpha fixed) from the mixture's importance weights and from MALA, and
     seconds per set: a proposal only pays if variance times time falls.

    python benchmarks/chi_n_proposals.py [--P 40] [--draws 20000] [--sets 8] [--blas-threads 1]
"""
import argparse
import math
import time

import blas  # benchmarks/blas.py, before numpy

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--P", type=int, default=40)
ap.add_argument("--draws", type=int, default=20000)
ap.add_argument("--sets", type=int, default=8)
blas.add_option(ap)
ARGS = ap.parse_args()
blas.apply(ARGS.blas_threads)

import numpy as np  # noqa: E402

from msat import generated  # noqa: E402
from msat.runtime import data  # noqa: E402
from msat.runtime.numerics import draw_sets  # noqa: E402
from msat.runtime.numerics.nonlinear_saddle import NonlinearSaddle  # noqa: E402
from msat.runtime.numerics.proposal import ess  # noqa: E402


def features(S, W, X):
    F = np.empty((len(W), X.shape[0]))
    S._model.features(X, np.ascontiguousarray(W), S._act, F)
    return F


def fraction(lw):
    v = np.exp(lw - lw.max())
    return ess(v) / len(v)


def gaussian_logpdf(Z, C):
    """ln N(z; 0, C) up to a constant (the weights are self-normalised)."""
    L = np.linalg.cholesky(C)
    U = np.linalg.solve(L, Z.T)
    return -0.5 * np.sum(U * U, axis=0)


def main():
    P, N = ARGS.P, 4 * ARGS.P
    ds = data.builtin("teacher", P=P, D=int(1.5 * P), P_test=20, seed=0)
    S = NonlinearSaddle(ds.X, ds.y, ds.X_test, N, 0.2, 1.0, 1.0, "erf", 1, estimator="mc", seed=1)
    C0, ms = None, None
    for chi in (1.0, math.sqrt(N), float(N)):
        st = S.solve(chi, C0, mc_state=ms)
        C0, ms = st.C, st.mc_state
    chi = float(N)
    Ct0 = S.field(st.fixed.C, chi)[2]
    tilt = generated.deep_linear_adaptation().tilt
    sd = math.sqrt(S.var_w)

    def log_q(W):
        return -0.5 * np.sum(W * W, axis=1) / S.var_w + tilt(features(S, W, S.X), Ct0)[:, 0]

    print(f"erf, P = {P}, D = {S.D}, N = chi = {N}: final draws {st.fixed.draws}, test-mean MCSE (RMS) "
          f"{math.sqrt(np.mean(np.square(st.mc_error['test_mean']))):.2e}")
    d, _ = draw_sets.mala_set(S, Ct0, ARGS.draws, 5, keep=True)
    W, w = d.W, np.exp(d.logw0 - d.logw0.max())
    w /= w.sum()
    S2 = W.T @ (W * w[:, None])
    lam, U = np.linalg.eigh(0.5 * (S2 + S2.T))
    u1 = U[:, -1]
    print(f"(a) top eigenvalues of q's second moment / prior variance: {np.round(lam[::-1][:5] / S.var_w, 2)}")
    t = W @ u1 / sd
    hist, edges = np.histogram(t, bins=12, weights=w)
    print("    marginal along the top direction (prior sd): "
          + " ".join(f"{e:+.1f}:{h:.3f}" for e, h in zip(0.5 * (edges[1:] + edges[:-1]), hist)))

    rng = np.random.default_rng(11)
    M = ARGS.draws
    # moments Gaussian
    Z = rng.standard_normal((M, S.D)) @ np.linalg.cholesky(S2).T
    f_gauss = fraction(log_q(Z) - gaussian_logpdf(Z, S2))
    # symmetric mixture 1/2 N(m, C) + 1/2 N(-m, C) by weighted EM
    m = math.sqrt(lam[-1]) * u1
    C = S2 - np.outer(m, m)
    for _ in range(30):
        r = np.tanh(W @ np.linalg.solve(C, m))  # E[sign | w] under the current mixture
        m = (w * r) @ W
        C = S2 - np.outer(m, m)
    Lc = np.linalg.cholesky(C)

    def mixture_draws(n, g):
        # only the +m component: q, the mixture and phi phi^T are even in w for erf, so its draws weighted
        # by q / mixture estimate E_q of every even function
        Wm = g.standard_normal((n, S.D)) @ Lc.T + m
        a = Wm @ np.linalg.solve(C, m)
        lg = gaussian_logpdf(Wm - m, C) + np.logaddexp(0.0, -2.0 * a)
        return Wm, log_q(Wm) - lg

    f_mix = fraction(mixture_draws(M, rng)[1])
    # 1-D density along u1 (Gaussian kernels at quantiles of q's marginal) times a Gaussian across
    tq = W @ u1
    Wp = W - np.outer(tq, u1)
    Cp = Wp.T @ (Wp * w[:, None])
    lp, Up = np.linalg.eigh(0.5 * (Cp + Cp.T))
    keep = lp > 1e-8 * lp.max()
    centres = np.quantile(tq, np.linspace(0.01, 0.99, 40))
    bw = 0.6 * 1.06 * np.std(tq) * len(centres) ** -0.2
    tt = centres[rng.integers(0, len(centres), M)] + bw * rng.standard_normal(M)
    zz = (rng.standard_normal((M, keep.sum())) * np.sqrt(lp[keep])) @ Up[:, keep].T
    zc = zz @ Up[:, keep]
    lg = (np.log(np.mean(np.exp(-0.5 * ((tt[:, None] - centres[None, :]) / bw) ** 2), axis=1))
          - 0.5 * np.sum(zc * zc / lp[keep], axis=1))
    f_strat = fraction(log_q(np.outer(tt, u1) + zz) - lg)
    print(f"(b) effective fraction of {M} fresh draws: moments Gaussian {f_gauss:.2f}, symmetric mixture "
          f"(|m| = {np.linalg.norm(m) / sd:.2f} prior sd) {f_mix:.2f}, 1-D density x Gaussian {f_strat:.2f}")

    alpha = np.random.default_rng(1).standard_normal(P)
    Xt = S.X_all[P:]

    def functional(Wx, lw):
        v = np.exp(lw - lw.max())
        v /= v.sum()
        return (v * (features(S, Wx, S.X) @ alpha)) @ features(S, Wx, Xt)

    vals, secs = {"mixture": [], "MALA": []}, {"mixture": 0.0, "MALA": 0.0}
    for k in range(ARGS.sets):  # alternating, so that a shared machine's load falls on both alike
        t0 = time.perf_counter()
        vals["mixture"].append(functional(*mixture_draws(M, np.random.default_rng(100 + k))))
        t1 = time.perf_counter()
        dk, _ = draw_sets.mala_set(S, Ct0, M, 100 + k, keep=True)  # msat's final draws at chi = N, as it makes them
        vals["MALA"].append(functional(dk.W, dk.logw0))
        secs["mixture"] += t1 - t0
        secs["MALA"] += time.perf_counter() - t1
    (s_mix, t_mix), (s_mala, t_mala) = ((math.sqrt(np.mean(np.var(vals[n], axis=0, ddof=1))), secs[n] / ARGS.sets)
                                        for n in ("mixture", "MALA"))
    print(f"(c) {ARGS.sets} sets of {M}: test functional sd (RMS) mixture {s_mix:.2e} ({t_mix:.2f} s per set), "
          f"MALA {s_mala:.2e} ({t_mala:.2f} s per set); variance x time, mixture / MALA: "
          f"{s_mix ** 2 * t_mix / (s_mala ** 2 * t_mala):.2f}")


if __name__ == "__main__":
    main()
