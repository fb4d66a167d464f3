"""How the Monte Carlo error of erf/relu kernel adaptation behaves as an error bar (report; docs/cli.md).

The single-neuron saddle on fixed draws reports the spread of its R independent draw sets over sqrt(R) as
each output's error (R = 8; docs/theory.md §6). Run with linear units, the same Monte Carlo solver has an
exact answer (the structured saddle, numerics.linear_saddle), so its z-scores (result - exact) / error can be
counted over many seeds: Student's t with R - 1 degrees of freedom if the error is honest. With erf units
(no exact answer) the spread of the results over the seeds is compared with the RMS reported error instead.
Teacher task, P = 10, D = 6, 3 test points, N = 60, chi = 30, kappa = 0.4 (the setting of
tests/runtime/test_nonlinear.py's honesty test, which runs the first 16 seeds).

    python benchmarks/error_tails.py [--seeds 30] [--replicates R] [--blas-threads T]
"""
from __future__ import annotations

import argparse
import sys
import time

import blas  # benchmarks/blas.py, before numpy

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--replicates", type=int, default=None, help="draw sets (default msat's)")
    blas.add_option(parser)
    args = parser.parse_args()
    blas.apply(args.blas_threads)

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from msat.runtime import data, spectral  # noqa: E402
from msat.runtime.numerics.replicates import REPLICATES  # noqa: E402
from msat.runtime.numerics.linear_saddle import LinearSaddle  # noqa: E402
from msat.runtime.numerics.nonlinear_saddle import NonlinearSaddle  # noqa: E402

OUTPUTS = ("train_mean", "test_mean", "test_var")


def main(seeds: int, replicates: int) -> int:
    ds = data.builtin("teacher", P=10, D=6, P_test=3, seed=3)
    N, kappa, chi = 60, 0.4, 30.0
    lin = LinearSaddle(spectral.spectrum(ds.X, ds.y, ds.X_test, 1.0), N, kappa, 1.0, 1)
    exact = lin.predictions(lin.solve(chi))
    z, spread2, reported2 = [], [], []
    for act in ("linear", "erf"):
        t0 = time.perf_counter()
        runs = [NonlinearSaddle(ds.X, ds.y, ds.X_test, N, kappa, 1.0, 1.0, act, 1, estimator="mc",
                                replicates=replicates, n_fixed=80000 // replicates, seed=s).solve(chi)
                for s in range(seeds)]
        print(f"{act}: {seeds} seeds in {time.perf_counter() - t0:.0f} s", flush=True)
        for k in OUTPUTS:
            v = np.array([st.predictions[k] for st in runs])
            e = np.array([st.mc_error[k] for st in runs])
            spread2.append(v.var(axis=0, ddof=1))
            reported2.append(np.mean(e ** 2, axis=0))
            if act == "linear":
                z.append(((v - np.ravel(exact[k])) / e).ravel())
    z = np.abs(np.concatenate(z))
    dof = replicates - 1
    print(f"\n{replicates} draw sets, 80,000 draws in all; linear units against the exact saddle, {z.size} z-scores")
    print(f"{'':>12}{'measured':>10}{f't_{dof}':>10}{'normal':>10}")
    rms_t = np.sqrt(dof / (dof - 2)) if dof > 2 else np.inf
    print(f"{'RMS z':>12}{np.sqrt(np.mean(z ** 2)):>10.2f}{rms_t:>10.2f}{1.0:>10.2f}")
    for c in (2, 3, 4):
        print(f"{f'|z| > {c}':>12}{np.mean(z > c):>10.3f}{2 * stats.t.sf(c, dof):>10.3f}{2 * stats.norm.sf(c):>10.3f}")
    print(f"{'largest |z|':>12}{z.max():>10.1f}")
    ratio = np.sqrt(np.mean(np.concatenate(spread2) / np.concatenate(reported2)))
    print(f"spread over seeds / RMS reported error (linear and erf, every output alike): {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(args.seeds, args.replicates or REPLICATES))
