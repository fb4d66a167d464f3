"""Whether single-neuron MALA holds relu's tilted law q(w) near the normalisability edge (docs/theory.md §6), in
one run (a report: no target).

For relu q(w) ∝ N(w; 0, g_w/D) exp(phi(Xw)^T Ct phi(Xw)) is a Gaussian along each ray w = r v, with variance
(g_w/D) / (1 - t(v)), t(v) the ray's tilt/prior: where t nears 1 some rays carry long tails. In D = 2 its moments
are one angular integral with the radius done in closed form, E_q[phi phi^T] = (D/2) int a^-(D+2)/2 phi(Xv)
phi(Xv)^T dv / int a^-D/2 dv with a(v) = D/(2 g_w) - phi(Xv)^T Ct phi(Xv), here by Gauss-Legendre between the
kinks of the features (independent of msat's code). The field Ct is msat's own order-1 saddle at chi = N
(teacher task, D = 2, P = 20, N = 100, kappa = 0.01: tilt/prior about 0.86). At that fixed Ct the script draws
`--seeds` independent sets of `--draws` MALA draws with msat's schedule (64 chains from prior draws, three
tuning rounds of 100 steps, then `--burn` steps before states are kept, every fourth): Langevin steps alone for
each burn-in of `--burns`, then as msat makes them for relu, with an exact draw of each chain's radius given its
direction every fourth step (numerics.mala), and prints z = (mean over sets - quadrature) / (spread over sets /
sqrt sets) over the entries of E_q[phi phi^T] and for E_q|w|^2; then one long run of Langevin steps alone (64
chains, `--long` steps after 3,000), whose error is the spread of its chains' means. msat burns 200 steps.

    python benchmarks/relu_heavy_rays.py [--seeds 24] [--draws 10000] [--burns 200,800,1600] [--long 30000]
"""
import argparse
import math
import sys

import blas  # benchmarks/blas.py, before numpy


def _parser():
    ap = argparse.ArgumentParser(description="relu near the normalisability edge: MALA against radial quadrature")
    ap.add_argument("--seeds", type=int, default=24)
    ap.add_argument("--draws", type=int, default=10000)
    ap.add_argument("--burns", default="200,800,1600")
    ap.add_argument("--long", type=int, default=30000)
    blas.add_option(ap)
    return ap


ARGS = _parser().parse_args(sys.argv[1:] if __name__ == "__main__" else [])
blas.apply(ARGS.blas_threads)

import numpy as np  # noqa: E402
from numpy.polynomial.legendre import leggauss  # noqa: E402

from msat.generated import densities  # noqa: E402
from msat.runtime.numerics.mala import mala_chains, tune  # noqa: E402
from msat.runtime.numerics.nonlinear_saddle import NonlinearSaddle  # noqa: E402

P, D, N, KAPPA, G_W, CHAINS = 20, 2, 100, 0.01, 1.0, 64
VAR_W = G_W / D


def teacher(seed=0):
    rng = np.random.default_rng(1000 + seed)
    X, Xt = rng.standard_normal((P, D)), rng.standard_normal((4, D))
    w0 = rng.standard_normal(D)
    return X, np.tanh(X @ (w0 / np.linalg.norm(w0)) + 0.3 * X[:, 1]), Xt


def circle_nodes(X, n=160):
    """Gauss-Legendre nodes on the unit circle between consecutive kinks of relu(X v) (and their weights)."""
    kinks = np.mod(np.concatenate([np.arctan2(X[:, 1], X[:, 0]) + s for s in (np.pi / 2, -np.pi / 2)]), 2 * np.pi)
    edges = np.concatenate([[0.0], np.sort(kinks), [2 * np.pi]])
    t, w = leggauss(n)
    th = np.concatenate([0.5 * (b - a) * t + 0.5 * (a + b) for a, b in zip(edges[:-1], edges[1:]) if b > a])
    wt = np.concatenate([0.5 * (b - a) * w for a, b in zip(edges[:-1], edges[1:]) if b > a])
    return np.c_[np.cos(th), np.sin(th)], wt


def quadrature(X, Ct):
    """(E_q[phi phi^T], E_q|w|^2, tilt/prior on the worst ray) with the radius integrated in closed form."""
    V, wt = circle_nodes(X)
    F = np.maximum(V @ X.T, 0.0)
    a = 1 / (2 * VAR_W) - np.einsum("ma,ab,mb->m", F, Ct, F)
    z0, w2 = np.sum(wt * a ** (-D / 2)), wt * (D / 2) * a ** (-(D + 2) / 2)
    return (F * w2[:, None]).T @ F / z0, np.sum(w2) / z0, float(np.max(1 - 2 * VAR_W * a))


def mala(X, Ct, draws, burn, seed, radial=0):
    """msat's single-neuron MALA schedule (numerics.field_cumulants.tilted_draws) with `burn` steps of burn-in,
    and with an exact draw of each chain's radius every `radial` steps (0: none)."""
    rng = np.random.default_rng(seed)
    act = densities.ACTIVATIONS.index("relu")
    W = np.ascontiguousarray(rng.standard_normal((CHAINS, D)) * math.sqrt(VAR_W))
    eps, acc, lq = np.full(CHAINS, 0.1 * VAR_W), np.zeros(CHAINS, dtype=np.int64), np.empty(CHAINS)
    for _ in range(3):
        acc[:] = 0
        mala_chains(W, X, Ct, float(D), G_W, act, eps, 100, 100, 1, int(rng.integers(2**31 - 1)), acc, lq,
                    np.empty((1, D)), radial)
        eps = tune(eps, acc / 100)
    steps = 4 * int(math.ceil(draws / CHAINS)) + burn
    S = np.empty((CHAINS * ((steps - burn + 3) // 4), D))
    kept = mala_chains(W, X, Ct, float(D), G_W, act, eps, steps, burn, 4, int(rng.integers(2**31 - 1)), acc, lq, S,
                       radial)
    return S[:kept].reshape(CHAINS, -1, D)


def main():
    if ARGS.seeds < 4:
        sys.exit("relu_heavy_rays.py: --seeds must be at least 4 (the z-scores' spread needs it)")
    X, y, Xt = teacher()
    saddle = NonlinearSaddle(X, y, Xt, N, KAPPA, 1.0, G_W, "relu", 1, estimator="mc")
    Ct = np.ascontiguousarray(saddle.solve(float(N)).Ct)
    Cq, r2q, ratio = quadrature(X, Ct)
    print(f"msat's order-1 saddle at chi = N = {N}: tilt/prior on the worst ray {ratio:.3f} (quadrature), "
          f"{saddle.normalisable(Ct)[1]:.3f} (msat's search); E_q|w|^2 = {r2q:.4f}")
    X = np.ascontiguousarray(X)
    print(f"{ARGS.seeds} sets of {ARGS.draws} draws each; z over sets (Student's t, {ARGS.seeds - 1} dof: RMS "
          f"{math.sqrt((ARGS.seeds - 1) / (ARGS.seeds - 3)):.2f})")
    print(f"{'burn-in':>8} {'radial':>6} {'RMS z, E[phi phi^T]':>20} {'max |z|':>8} {'E|w|^2':>8} {'+-':>7} {'z':>6}")
    runs = [(int(b), 0) for b in ARGS.burns.split(",")] + [(200, 4)]
    for burn, radial in runs:
        C, r2 = [], []
        for s in range(ARGS.seeds):
            S = mala(X, Ct, ARGS.draws, burn, 700 + s, radial)
            F = np.maximum(S.reshape(-1, D) @ X.T, 0.0)
            C.append(F.T @ F / len(F))
            r2.append(np.mean(np.sum(S ** 2, axis=-1)))
        C, r2 = np.array(C), np.array(r2)
        z = (C.mean(0) - Cq) / (C.std(0, ddof=1) / math.sqrt(len(C)))
        se = r2.std(ddof=1) / math.sqrt(len(r2))
        print(f"{burn:>8} {radial:>6} {math.sqrt(np.mean(z ** 2)):>20.2f} {np.max(np.abs(z)):>8.2f} {r2.mean():>8.4f} "
              f"{se:>7.4f} {(r2.mean() - r2q) / se:>6.2f}", flush=True)
    S = mala(X, Ct, CHAINS * ARGS.long // 4, 3000, 99)
    means = np.mean(np.sum(S ** 2, axis=-1), axis=1)
    print(f"long run ({CHAINS} chains, {ARGS.long} steps after 3,000): E|w|^2 {means.mean():.4f} +- "
          f"{means.std(ddof=1) / math.sqrt(CHAINS):.4f} (quadrature {r2q:.4f})")


if __name__ == "__main__":
    main()
