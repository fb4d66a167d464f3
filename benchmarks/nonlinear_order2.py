"""Order 2 for erf networks against sampled networks (docs/theory.md §2e, §7), measured in one run.

Teacher task, P points (default 20), D = 1.5 P, N = 4 P, 10 test points, kappa = 0.2. For chi = 1 and
chi = N: a long run of the Rao-Blackwellised sampler is the reference; order 1 and order 2 are solved
at chi warm-started from the ladder point before it, and their RMS test-mean errors against the
reference are printed with the reference's MCSE. The cost ratio compares one warm-started order-2
point with the time the sampler needs to reach an MCSE equal to order 2's error (its time per draw
from a shorter run, scaled by (MCSE / error)^2). Target (issue 13): at most 0.1.

    python benchmarks/nonlinear_order2.py [--P 20] [--blas-threads T]
"""
import argparse
import sys
import time

import blas  # benchmarks/blas.py, before numpy


def _parser():
    ap = argparse.ArgumentParser(description="erf order 2 vs sampled networks: accuracy and cost")
    ap.add_argument("--P", type=int, default=20, help="training points (default 20)")
    blas.add_option(ap)
    return ap


ARGS = _parser().parse_args(sys.argv[1:] if __name__ == "__main__" else [])
blas.apply(ARGS.blas_threads)  # before numpy (and its BLAS) is imported

import numpy as np  # noqa: E402

from msat.runtime import data, predict, sample  # noqa: E402


def main():
    P = ARGS.P
    ds = data.builtin("teacher", P=P, D=int(1.5 * P), P_test=10, seed=0)
    X, y, Xt = ds.X, ds.y, ds.X_test
    N, kappa = 4 * P, 0.2
    for chi in (1.0, float(N)):
        ref = sample(X, y, Xt, N=N, chi=chi, kappa=kappa, activation="erf", samples=8000, chains=4, seed=11,
                     readout="marginal")
        t = time.perf_counter()
        short = sample(X, y, Xt, N=N, chi=chi, kappa=kappa, activation="erf", samples=1000, chains=4, seed=12,
                       readout="marginal")
        t_short = time.perf_counter() - t
        rms = lambda m: float(np.sqrt(np.mean((np.asarray(m) - ref.test_mean) ** 2)))  # noqa: E731
        ladder = [chi / 2, chi] if chi > 1 else [1.5, 1.0]
        out = {}
        for order in (1, 2):
            res = predict(X, y, Xt, N=N, chi=ladder, kappa=kappa, activation="erf", method="adaptive", order=order)
            out[order] = res[-1]
        e1, e2 = rms(out[1].test_mean), rms(out[2].test_mean)
        mcse_short = float(np.sqrt(np.mean(np.square(short["test_mean_mcse"]))))
        t_same = t_short * (mcse_short / max(e2, 1e-12)) ** 2  # sampler time to an MCSE equal to e2
        print(f"chi = {chi:g}: reference MCSE {np.sqrt(np.mean(np.square(ref['test_mean_mcse']))):.1e}; RMS test "
              f"error order 1 {e1:.2e}, order 2 {e2:.2e}; warm-started order-2 point {out[2].seconds:.1f} s, "
              f"sampler to MCSE {e2:.1e}: {t_same:.1f} s; ratio {out[2].seconds / t_same:.2f} (target <= 0.1)")


if __name__ == "__main__":
    main()
