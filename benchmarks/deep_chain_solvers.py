"""Deep kernel adaptation along a chi ladder to mean field (docs/theory.md §2d), measured in one run.

Linear network with three hidden layers of width N = 4P, P = 100, D = 50, Ising task, order 1, the
13-point ladder chi = 1 .. N through `msat predict`'s ladder (warm starts, failing steps split). Past
chi ~ N/4 the chain's saddle map stops contracting: the accelerated sweeps (numerics.anderson) fail
there and the chain falls back to Newton-Krylov steps with the derived Jacobian (numerics.newton).
Prints, per solver setting, the total time, the points each solver settled, and the largest
difference between the two settings' test means.

    python benchmarks/deep_chain_solvers.py [--blas-threads T]
"""
import argparse
import sys
import time

import blas  # benchmarks/blas.py, before numpy


def _parser():
    ap = argparse.ArgumentParser(description="deep chain: Anderson with Newton fallback vs Newton only")
    blas.add_option(ap)
    return ap


ARGS = _parser().parse_args(sys.argv[1:] if __name__ == "__main__" else [])
blas.apply(ARGS.blas_threads)  # before numpy (and its BLAS) is imported

import collections

import numpy as np
from msat.runtime import data, predict
from msat.runtime.numerics.deep_chain import DeepChain


def main():
    P, D, N = 100, 50, 400
    ds = data.builtin("ising", P=P, D=D, P_test=5, seed=0)
    chis = np.geomspace(1, N, 13)
    means = {}
    for setting in ("anderson", "newton-krylov"):
        DeepChain.solver = setting
        t = time.perf_counter()
        results = predict(ds.X, ds.y, ds.X_test, N=N, depth=3, chi=list(chis), kappa=0.5,
                          method="adaptive", order=1)
        total = time.perf_counter() - t
        used = collections.Counter(r.extra.get("observables", {}).get("solver", "-") for r in results)
        means[setting] = np.array([r.test_mean for r in results])
        print(f"{setting:>14}: ladder of {len(chis)} points to chi = N in {total:.2f} s; "
              f"converged {sum(r.converged for r in results)}; solvers {dict(used)}")
    print(f"largest |test mean difference| between the settings: "
          f"{np.abs(means['anderson'] - means['newton-krylov']).max():.1e}")


if __name__ == "__main__":
    main()
