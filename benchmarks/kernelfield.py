"""Wishart-field one loop (docs/theory.md §2c, `--method adaptive --order 2`), measured in one run.

(a) P = 1000, D = 2000 (kernel field, 1000 x 1000): one warm-started chi point (Newton for the
    saddle from the previous chi's C, then the loop term) as a ratio to one numpy.linalg.eigh of
    the kernel. Target <= 30. (a') the same for P = 2000, D = 500 (weight field, 500 x 500).
(b) accuracy against --method exact at n/N = 1/4 and 1/2, n = min(P, D) the field size (report; the
    expansion parameter is n/N), next to the NNGP's and kernel adaptation order 1's errors: P = 40,
    D = 80 (kernel field) and (b') P = 80, D = 20 (weight field).

    python benchmarks/kernelfield.py [--quick]
"""
import argparse
import time

import numpy as np

from msat.runtime import data, spectral
from msat.runtime.methods import exact
from msat.runtime.numerics.wishart import WishartField
from msat.runtime import predict


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = [(300, 600), (600, 150)] if args.quick else [(1000, 2000), (2000, 500)]
    for label, (P, D) in zip(("(a) ", "(a')"), sizes):
        ds = data.builtin("ising", P=P, D=D, P_test=10, seed=0)
        K = ds.X @ ds.X.T / D
        N = 4 * min(P, D)
        t = time.perf_counter()
        np.linalg.eigh(K)
        t_eigh = time.perf_counter() - t
        F = None
        for chi in (10.0, 12.0):
            f = WishartField.for_data(ds.X, ds.y, N, chi, 0.5, 1.0, 1.0)
            if F is None:  # the previous ladder point
                F, _ = f.saddle(f.start_from_kernel(K))
                continue
            t = time.perf_counter()
            F, iters = f.saddle(F)
            f.one_loop(F)
            t_point = time.perf_counter() - t
        print(f"{label} P={P}, D={D}, N={N}, {f.name} field {f.n} x {f.n}: warm-started chi point "
              f"{t_point:.2f} s ({iters} Newton steps) vs eigh(K) {t_eigh:.3f} s: ratio "
              f"{t_point / t_eigh:.1f} (target <= 30)")
    for label, (Pb, Db) in (("(b) ", (40, 80)), ("(b')", (80, 20))):
        _accuracy(label, Pb, Db)


def _accuracy(label, Pb, Db):
    """Max mean error against --method exact at n/N = 1/4 and 1/2, n = min(P, D) (the field size)."""
    n = min(Pb, Db)
    dsb = data.builtin("ising", P=Pb, D=Db, P_test=10, seed=1)
    spec = spectral.spectrum(dsb.X, dsb.y, dsb.X_test, 1.0)
    for ratio in (4, 2):
        N = ratio * n
        for chi in (1.0, float(N)):
            ex = exact.moments(spec, N, chi, 0.5, 1.0)
            errs = {}
            for name, kw in (("nngp", dict(method="nngp")), ("adaptive o1", dict(method="adaptive", order=1)),
                             ("adaptive o2", dict(method="adaptive", order=2))):
                r = predict(dsb.X, dsb.y, dsb.X_test, N=N, chi=chi, kappa=0.5, **kw)
                errs[name] = max(np.max(np.abs(np.array(r[k]) - ex[k])) for k in ("train_mean", "test_mean"))
            print(f"{label} P={Pb}, D={Db}, N={N} (n/N = 1/{ratio}), chi={chi:g}: max mean error " +
                  ", ".join(f"{k} {v:.2e}" for k, v in errs.items()))


if __name__ == "__main__":
    main()
