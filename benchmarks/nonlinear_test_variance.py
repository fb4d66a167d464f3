"""Kernel adaptation's test variance for erf and relu against sampled networks (docs/theory.md §2b, §2e), a report.

Order 1's test variance is the outputs' variance at the adapted kernel; order 2 adds the kernel field's one loop
of it and the test means' variance over the field. Both are compared with msat's sampler on one chi ladder
(1, sqrt N, N), teacher task, kappa = 0.2, 10 test points: the ratio of each theory's test variance to the
sampled one (mean, range over test points) and the largest |z| with both Monte Carlo errors combined.

    python benchmarks/nonlinear_test_variance.py [--activation erf|relu] [--P 20] [--D 30] [--N 80]
        [--samples 8000] [--blas-threads T]
"""
import argparse
import sys
import time

import blas  # benchmarks/blas.py, before numpy


def _parser():
    ap = argparse.ArgumentParser(description="erf/relu adaptive test variance against sampled networks")
    ap.add_argument("--activation", default="erf", choices=("erf", "relu"))
    ap.add_argument("--P", type=int, default=20)
    ap.add_argument("--D", type=int, default=30)
    ap.add_argument("--N", type=int, default=80)
    ap.add_argument("--samples", type=int, default=8000, help="sampler draws per chain (4 chains)")
    ap.add_argument("--seed", type=int, default=3)
    blas.add_option(ap)
    return ap


ARGS = _parser().parse_args(sys.argv[1:] if __name__ == "__main__" else [])
blas.apply(ARGS.blas_threads)

import numpy as np  # noqa: E402

from msat.runtime import data, predict  # noqa: E402


def main(a):
    ds = data.builtin("teacher", P=a.P, D=a.D, P_test=10, seed=0)
    chis = [1.0, float(np.sqrt(a.N)), float(a.N)]
    common = dict(N=a.N, chi=chis, kappa=0.2, activation=a.activation)
    t = time.perf_counter()
    ref = predict(ds.X, ds.y, ds.X_test, method="sample", samples=a.samples, chains=4, seed=a.seed + 1, **common)
    print(f"{a.activation}, P = {a.P}, D = {a.D}, N = {a.N}: sampler {time.perf_counter() - t:.1f} s")
    print(f"{'order':>5} {'chi':>7} {'ratio mean':>10} {'range':>13} {'max|z|':>7} {'MCSE ref':>9} {'MCSE theory':>11}")
    for order in (1, 2):
        t = time.perf_counter()
        res = predict(ds.X, ds.y, ds.X_test, method="adaptive", order=order, seed=a.seed, **common)
        took = time.perf_counter() - t
        for r, s in zip(res, ref):
            mc = np.asarray(r.mc_error.get("test_var", np.zeros(len(r.test_var))))
            ratio = r.test_var / s.test_var
            z = (r.test_var - s.test_var) / np.hypot(np.asarray(s.test_var_mcse), mc)
            print(f"{order:>5} {r.chi:>7.1f} {ratio.mean():>10.3f} {ratio.min():>6.3f}-{ratio.max():<6.3f} "
                  f"{np.abs(z).max():>7.1f} {np.max(s.test_var_mcse):>9.1e} {np.max(mc):>11.1e}")
        print(f"      (order {order}: {took:.1f} s for the ladder)")


if __name__ == "__main__":
    main(ARGS)
