"""Deep sampler speed (docs/theory.md §2d, §7): gradient steps per second per parameter of HMC over
all weights of a network with three hidden layers (numerics.deep_hmc.leapfrog) against the
two-layer sampler (numerics.hmc.leapfrog_chain), same P, D, similar parameter count, timed
interleaved in one run. Target: the deep sampler within 2x of the two-layer one per parameter,
i.e. ratio (two-layer rate / deep rate) <= 2.

    python benchmarks/deep_sampler.py [--quick] [--reps R]
"""
import argparse
import time

import numpy as np

from msat.generated import densities
from msat.runtime.numerics import deep_hmc, hmc


def two_layer(X, y, Xt, N, n_iter, n_leap, rng):
    P, D = X.shape
    W, a = rng.standard_normal((N, D)) / np.sqrt(D), rng.standard_normal(N) / np.sqrt(N)
    z = lambda *s: np.zeros(s)  # noqa: E731
    t = time.perf_counter()
    hmc.leapfrog_chain(W, a, X, y, Xt, z(0, D), 1.0, 0.5, 1.0, 1.0, 0, float(D), float(N), 1e-3, n_leap, n_iter,
                       0.0, rng, False, False, z(1, P), z(1, Xt.shape[0]), z(1, 0), z(1), z(n_iter), z(D, D),
                       z(P, P), z(n_iter, 2))
    return n_iter * n_leap * (N * D + N) / (time.perf_counter() - t)


def deep(X, y, Xt, widths, n_iter, n_leap, rng):
    P, D = X.shape
    widths = np.asarray(widths)
    offs = densities.deep_offsets(widths, D)
    n, L = offs[-1], len(widths)
    group = np.repeat(np.arange(L + 1), np.diff(offs))
    theta = rng.standard_normal(n) * 0.1
    z = lambda *s: np.zeros(s)  # noqa: E731
    t = time.perf_counter()
    deep_hmc.leapfrog(theta, widths, group, np.ascontiguousarray(X.T), y, np.ascontiguousarray(Xt.T), z(0, D),
                      1.0, 0.5, 1.0, np.ones(L), 0, np.ones(L + 1) * 100.0, 1e-3, n_leap, n_iter, 0.0, rng, False,
                      z(1, P), z(1, Xt.shape[0]), z(1, 0), z(L, P, P), z(D, D), z(1, L), z(n_iter), z(n_iter, L + 1))
    return n_iter * n_leap * n / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    P, D, N = (20, 20, 50) if args.quick else (100, 50, 300)
    widths = [N // 3 * 2, N // 3 * 2, N // 3 * 2] if not args.quick else [30, 30, 30]
    rng = np.random.default_rng(0)
    X, Xt = rng.standard_normal((P, D)), rng.standard_normal((10, D))
    y = np.sign(X[:, 0])
    two_layer(X[:4], y[:4], Xt[:2], 3, 2, 2, rng)  # compile
    deep(X[:4], y[:4], Xt[:2], [3, 3], 2, 2, rng)
    n_iter = 20 if args.quick else 50
    r2, rd = [], []
    for _ in range(args.reps):
        r2.append(two_layer(X, y, Xt, N, n_iter, 10, rng))
        rd.append(deep(X, y, Xt, widths, n_iter, 10, rng))
    m2, md = float(np.median(r2)), float(np.median(rd))
    n_deep = densities.deep_offsets(np.asarray(widths), D)[-1]
    print(f"P = {P}, D = {D}; two-layer N = {N} ({N * D + N} parameters); deep widths {widths} ({n_deep} parameters)")
    print(f"two-layer: {m2:.3g} parameter-gradients/s   deep: {md:.3g} parameter-gradients/s")
    print(f"ratio two-layer/deep = {m2 / md:.2f}   (target <= 2)")


if __name__ == "__main__":
    main()
