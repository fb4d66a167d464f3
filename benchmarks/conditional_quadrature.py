"""At chi = N, would integrating the wide direction of erf's tilted single-neuron law by quadrature cut its
Monte Carlo noise? (report; issue 13, docs/theory.md §6)

Same point as chi_n_proposals.py: teacher task, P points, D = 1.5 P, 20 test points, kappa = 0.2, N = chi = 4P,
order 1, warm-started ladder 1, sqrt N, N; Ct0 the field at the solution, q(w) ~ N(0, var_w I) exp(phi^T Ct0 phi),
phi = erf(X w); f(w) = phi(x*.w) phi(Xw).alpha (alpha fixed, 20 test points) the test functional. u is the top
eigenvector of q's second moment from a pilot MALA set of 20,000; w = sd (s u + B y), B a basis across u, sd the
prior's. q and f are even in w, so s >= 0 (folded).
 (1) from a reference of --ref-sets MALA sets of 20,000: the variance of f split by conditioning on |s| (quantile
     bins), var(E[f|s]) against E[var(f|s)], which bounds what integrating s exactly can gain; and the importance
     weights' variance at a few s of Gaussians across: the prior's, and G_s = N(m_s, C_s) fitted to the pilot
     (m_s odd cubic, C_s even quartic in s by least squares; only its RANK eigenvalues furthest from 1 kept, the
     rest set to the prior's 1; eigenvalues clipped at CLIP, since q's tails across are the prior's and a
     variance under 1/2 gives the weights infinite variance) -- how Gaussian the conditional laws are;
 (2) the estimator E_q f = int Z(s) E[f|s] ds / int Z(s) ds: Gauss-Legendre in s on [0, 7] (--nodes nodes), at
     each node draws of G_s in proportion to the node's mass under the pilot's marginal of s (at least 64),
     weighted to q, the same standard normal draws at every node (pseudo-random, or scrambled Sobol'); against
     MALA sets of M draws as msat makes its final draws, alternating. Over --sets repetitions: the spread of f
     (RMS sd over test points), seconds per set to make the draws and their weights ("draws") and for one
     pass of features and moments over them ("pass"), variance x time against MALA's, the variance ratio at
     equal draws (what is left when a solver's sweeps, one pass each, dominate), and the mean's z-scores
     against the reference (both errors);
 (3) the same for the moments msat needs, E_q[phi(Xw) phi(Xw)^T] (upper triangle) and E_q[phi(X*w) phi(Xw)^T]:
     the per-element variance ratio at equal draws and at equal time (RMS over elements of sd, median ratio).
The pilot is timed apart: a solver would need one per field.

    python benchmarks/conditional_quadrature.py [--P 40] [--sets 12] [--nodes 40] [--budgets 20000,80000]
                                                [--ref-sets 16] [--blas-threads 1]
"""
import argparse
import math
import time
import warnings

import blas  # benchmarks/blas.py, before numpy

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--P", type=int, default=40)
ap.add_argument("--sets", type=int, default=12)
ap.add_argument("--nodes", type=int, default=40)
ap.add_argument("--budgets", default="20000,80000")
ap.add_argument("--ref-sets", type=int, default=16)
blas.add_option(ap)
ARGS = ap.parse_args()
blas.apply(ARGS.blas_threads)

import numpy as np  # noqa: E402
from scipy.stats import norm, qmc  # noqa: E402

from msat import generated  # noqa: E402
from msat.runtime import data  # noqa: E402
from msat.runtime.numerics import draw_sets  # noqa: E402
from msat.runtime.numerics.nonlinear_saddle import NonlinearSaddle  # noqa: E402

S_MAX, S_FIT, RANK, CLIP = 7.0, 4.5, 8, 0.6  # s's range; the fit's (not extrapolated beyond); see (1)
METHODS = ("pseudo-random", "Sobol'", "MALA")


def features(S, W, X):
    F = np.empty((len(W), X.shape[0]))
    S._model.features(X, np.ascontiguousarray(W), S._act, F)
    return F


def main():
    P, N = ARGS.P, 4 * ARGS.P
    ds = data.builtin("teacher", P=P, D=int(1.5 * P), P_test=20, seed=0)
    S = NonlinearSaddle(ds.X, ds.y, ds.X_test, N, 0.2, 1.0, 1.0, "erf", 1, estimator="mc", seed=1)
    C0, ms = None, None
    t0 = time.perf_counter()
    for chi in (1.0, math.sqrt(N), float(N)):
        st = S.solve(chi, C0, mc_state=ms)
        C0, ms = st.C, st.mc_state
    Ct0 = S.field(st.fixed.C, float(N))[2]
    tilt = generated.deep_linear_adaptation().tilt
    sd, D, Xt = math.sqrt(S.var_w), S.D, S.X_all[P:]
    alpha = np.random.default_rng(1).standard_normal(P)
    iu = np.triu_indices(P)
    print(f"erf, P = {P}, D = {D}, N = chi = {N}: ladder solved in {time.perf_counter() - t0:.1f} s")

    def log_q(W):
        return -0.5 * np.sum(W * W, axis=1) / S.var_w + tilt(features(S, W, S.X), Ct0)[:, 0]

    def estimates(W, v):
        """f, E[phi phi^T] (upper triangle), E[phi* phi^T] under the normalised weights v of the rows of W."""
        F, Fs = features(S, W, S.X), features(S, W, Xt)
        Fv = F * v[:, None]
        return np.concatenate([(Fv @ alpha) @ Fs, (F.T @ Fv)[iu], (Fs.T @ Fv).ravel()])

    def mala(M, seed):
        return draw_sets.mala_set(S, Ct0, M, seed, keep=True)[0].W  # equal weights (MALA)

    t0 = time.perf_counter()
    Wp = mala(20000, 7)
    lam, U = np.linalg.eigh(Wp.T @ Wp / len(Wp))
    u = U[:, -1]
    B = np.linalg.svd(np.eye(D) - np.outer(u, u))[0][:, :D - 1]  # orthonormal basis across u
    s_p, Y_p = Wp @ u / sd, Wp @ B / sd
    Y_p, s_p = Y_p * np.where(s_p >= 0, 1.0, -1.0)[:, None], np.abs(s_p)  # folded: w -> -w maps (s, y) to (-s, -y)
    bm = np.stack([s_p, s_p ** 3], 1)
    am = np.linalg.lstsq(bm, Y_p, rcond=None)[0]
    R = Y_p - bm @ am
    bc = np.stack([np.ones_like(s_p), s_p ** 2, s_p ** 4], 1)
    Ac = np.tensordot(np.linalg.inv(bc.T @ bc), np.array([R.T @ (R * b[:, None]) for b in bc.T]), 1)

    def gaussian_across(s):
        """m_s and a square root of C_s."""
        c = min(s, S_FIT)
        ev, V = np.linalg.eigh(np.tensordot([1.0, c * c, c ** 4], Ac, 1))
        ev = np.maximum(ev, CLIP)
        keep = np.argsort(-np.abs(np.log(ev)))[:RANK]
        ev[np.setdiff1d(np.arange(D - 1), keep)] = 1.0
        return np.array([s, s ** 3]) @ am, V * np.sqrt(ev)

    nodes, weights = np.polynomial.legendre.leggauss(ARGS.nodes)
    nodes, weights = 0.5 * S_MAX * (nodes + 1), 0.5 * S_MAX * weights
    G = [gaussian_across(s) for s in nodes]
    logdet = np.array([np.linalg.slogdet(L)[1] for _, L in G])
    mass = weights * np.mean(np.exp(-0.5 * ((nodes[:, None] - s_p[None, :]) / 0.2) ** 2), axis=1)
    mass /= mass.sum()  # the nodes' shares of the pilot's marginal of s (kernel density)
    t_pilot = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref_sets = [mala(20000, 1000 + k) for k in range(ARGS.ref_sets)]
    Wr = np.concatenate(ref_sets)
    lam_r, U_r = np.linalg.eigh(Wr.T @ Wr / len(Wr))
    ref = np.array([estimates(Wk, np.full(len(Wk), 1.0 / len(Wk))) for Wk in ref_sets])
    ref_mean, ref_se = ref.mean(0), ref.std(0, ddof=1) / math.sqrt(ARGS.ref_sets)
    print(f"pilot (one MALA set of 20,000, u, {ARGS.nodes} Gaussians across) {t_pilot:.2f} s; reference {len(Wr)} "
          f"MALA draws {time.perf_counter() - t0:.1f} s; u's angle to the reference's "
          f"{math.degrees(math.acos(min(1.0, abs(u @ U_r[:, -1])))):.1f} deg; top eigenvalues of the second "
          f"moment / var_w: pilot {np.round(lam[::-1][:3] / S.var_w, 2)}, "
          f"reference {np.round(lam_r[::-1][:3] / S.var_w, 2)}")

    # (1)
    F = features(S, Wr, Xt) * (features(S, Wr, S.X) @ alpha)[:, None]
    s_r = np.abs(Wr @ u / sd)
    for nb in (20, 80):
        edges = np.quantile(s_r, np.linspace(0, 1, nb + 1))
        b = np.clip(np.searchsorted(edges, s_r, "right") - 1, 0, nb - 1)
        mb = np.stack([np.bincount(b, F[:, j], nb) for j in range(F.shape[1])], 1)
        mb /= np.bincount(b, minlength=nb)[:, None]
        within, between = np.mean((F - mb[b]) ** 2), np.mean((mb[b] - F.mean(0)) ** 2)
        print(f"(1) {nb} bins of |s|: var(E[f|s]) {between:.3f}, E[var(f|s)] {within:.3f} (var_q f "
              f"{F.var(0).mean():.3f}, means over test points): conditioning on s gains at most "
              f"{(within + between) / within:.3f}x")
    rng = np.random.default_rng(3)
    print("    importance weights of Gaussians across at fixed s, var(w) / effective fraction of 20,000 draws:")
    for s in (0.0, 1.5, 2.5, 3.5, 4.5, 5.5):
        out = []
        for m, L in ((np.zeros(D - 1), np.eye(D - 1)), gaussian_across(s)):
            Z = rng.standard_normal((20000, D - 1))
            lr = log_q(sd * (s * u + (m + Z @ L.T) @ B.T)) + 0.5 * np.sum(Z * Z, axis=1)
            r = np.exp(lr - lr.max())
            r /= r.mean()
            out.append(f"{r.var():.2f} / {1 / np.mean(r * r):.2f}")
        print(f"    s = {s:.1f}: prior across {out[0]}, G_s fitted to the pilot {out[1]}")

    # (2), (3)
    def quadrature(M, seed, sobol):
        """The draws and their normalised weights."""
        Mk = np.maximum(64, np.round(M * mass)).astype(int)
        if sobol:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # balance properties need powers of 2
                Z = norm.ppf(np.clip(qmc.Sobol(D - 1, scramble=True, seed=seed).random(Mk.max()), 1e-12, 1 - 1e-12))
        else:
            Z = np.random.default_rng(seed).standard_normal((Mk.max(), D - 1))
        half = 0.5 * np.sum(Z * Z, axis=1)
        Ws, lr = [], []
        for s, (m, L), n, ld, wk in zip(nodes, G, Mk, logdet, weights):
            W = sd * (s * u + (m + Z[:n] @ L.T) @ B.T)
            Ws.append(W)
            lr.append(log_q(W) + half[:n] + ld + math.log(wk / n))  # ln q - ln G_s (normalised), node weight
        lr = np.concatenate(lr)
        v = np.exp(lr - lr.max())
        return np.concatenate(Ws), v / v.sum()

    groups = {"f": slice(0, 20), "phi phi^T": slice(20, 20 + len(iu[0])), "phi* phi^T": slice(20 + len(iu[0]), None)}
    for M in (int(b) for b in ARGS.budgets.split(",")):
        vals = {n: [] for n in METHODS}
        t_draw, t_pass = dict.fromkeys(METHODS, 0.0), dict.fromkeys(METHODS, 0.0)
        for k in range(ARGS.sets):  # alternating, so that a shared machine's load falls on all alike
            for n in METHODS:
                t0 = time.perf_counter()
                if n == "MALA":
                    W = mala(M, 100 + k)
                    v = np.full(len(W), 1.0 / len(W))
                else:
                    W, v = quadrature(M, 500 + k, n == "Sobol'")
                t1 = time.perf_counter()
                vals[n].append(estimates(W, v))
                t_draw[n] += (t1 - t0) / ARGS.sets
                t_pass[n] += (time.perf_counter() - t1) / ARGS.sets
        var = {n: np.var(vals[n], axis=0, ddof=1) for n in METHODS}
        t = {n: t_draw[n] + t_pass[n] for n in METHODS}
        print(f"(2) {ARGS.sets} sets of M = {M} ({ARGS.nodes} nodes, {np.maximum(64, np.round(M * mass)).sum():.0f}"
              f" draws in all, in proportion to the pilot's mass):")
        for n in METHODS:
            a = np.asarray(vals[n])
            z = (a.mean(0) - ref_mean) / np.sqrt(var[n] / len(a) + ref_se ** 2)
            g = groups["f"]
            print(f"    {n:14s} f: sd {math.sqrt(var[n][g].mean()):.2e}, draws {t_draw[n]:.3f} s + pass "
                  f"{t_pass[n]:.3f} s per set; variance / MALA's {var[n][g].mean() / var['MALA'][g].mean():.2f}, "
                  f"x time {var[n][g].mean() * t[n] / (var['MALA'][g].mean() * t['MALA']):.2f}; z vs reference: RMS "
                  f"{np.sqrt(np.mean(z[g] ** 2)):.2f}, max {np.abs(z[g]).max():.2f}")
            if n == "MALA":
                continue
            for name in ("phi phi^T", "phi* phi^T"):
                g = groups[name]
                rat = var[n][g] / var["MALA"][g]
                print(f"    {'':14s} {name}: sd (RMS) {math.sqrt(var[n][g].mean()):.2e} vs MALA's "
                      f"{math.sqrt(var['MALA'][g].mean()):.2e}; variance / MALA's: mean-variance ratio "
                      f"{var[n][g].mean() / var['MALA'][g].mean():.2f}, median per element {np.median(rat):.2f}, "
                      f"x time {var[n][g].mean() * t[n] / (var['MALA'][g].mean() * t['MALA']):.2f}; z RMS "
                      f"{np.sqrt(np.mean(z[g] ** 2)):.2f}")


if __name__ == "__main__":
    main()
