"""Deep kernel adaptation timing (docs/theory.md §2d), measured in one run.

Linear network with three hidden layers of width N = 4P, P = 1000, D = 500, Ising task: one
warm-started chi point of the chain (numerics.deep_chain: Anderson-accelerated sweeps on the range of
K) plus its predictions and observables, as a ratio to one numpy.linalg.eigh of the P x P kernel.
Target: at most 10 x depth eighs. Orders 0 and 1, the median over ten consecutive ladder points.

    python benchmarks/deep_adaptive.py [--quick] [--depth L] [--blas-threads T]
"""
import argparse
import statistics
import sys
import time

import blas  # benchmarks/blas.py, before numpy


def _parser():
    ap = argparse.ArgumentParser(description="deep kernel adaptation: one chi point vs one eigh(K)")
    ap.add_argument("--quick", action="store_true", help="P=300, D=150 instead of P=1000, D=500")
    ap.add_argument("--depth", type=int, default=3, help="hidden layers of width 4P (default 3)")
    blas.add_option(ap)
    return ap


ARGS = _parser().parse_args(sys.argv[1:] if __name__ == "__main__" else [])
blas.apply(ARGS.blas_threads)  # before numpy (and its BLAS) is imported

import numpy as np  # noqa: E402

from msat.runtime import data, params as _params  # noqa: E402
from msat.runtime.methods.deep_adaptive import DeepSolver  # noqa: E402


def main():
    args = ARGS
    P, D, L = (300, 150, args.depth) if args.quick else (1000, 500, args.depth)
    ds = data.builtin("ising", P=P, D=D, P_test=20, seed=0)
    K = ds.X @ ds.X.T / D
    N = 4 * P
    chis = np.geomspace(1, N, 30)
    ts = []
    for _ in range(3):
        t = time.perf_counter()
        np.linalg.eigh(K)
        ts.append(time.perf_counter() - t)
    t_eigh = statistics.median(ts)
    for order in (0, 1):
        p = _params.build(P, D, 20, N=N, depth=L, kappa=0.5, method="adaptive", order=order)
        solver = DeepSolver(ds, p)
        st = solver.solve(chis[0], None)
        times, iters = [], []
        for chi in chis[1:11]:
            t = time.perf_counter()
            st = solver.solve(chi, st.T)
            solver.results([st])
            times.append(time.perf_counter() - t)
            iters.append(st.iterations)
        t_pt = statistics.median(times)
        print(f"depth {L}, order {order}, P={P}, D={D}, N={N}, r={solver.chain.r}: warm-started chi point "
              f"{t_pt:.3f} s ({statistics.median(iters):.0f} sweeps), eigh(K) {t_eigh:.3f} s, "
              f"ratio {t_pt / t_eigh:.2f} (target <= {10 * L})")


if __name__ == "__main__":
    main()
