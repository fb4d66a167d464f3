"""Kernel adaptation for erf and relu at realistic sizes, measured in one run (docs/theory.md §2b, §6).

Standard normal inputs, P points (default 1000), D = 200, y = tanh(x_0 + x_1 / 2), 50 test points, N = 2P,
kappa = 0.1, `--method adaptive --order 1` along a chi ladder (default 1, 2: the second point is
warm-started from the first). For every point it prints the wall time as a multiple of one
`numpy.linalg.eigh` of the P x P kernel (the median of three, timed in the same run; issue 16's
target: one warm-started point at most 30 eighs at chi = 1 and 100 at chi = N; the script's first
point is cold and its time includes the solver's setup), the RMS test-mean MCSE and the RMS distance
from the NNGP it resolves (target: MCSE at most a tenth of it), and the whole ladder's eighs (issue
16's target for a 5-point ladder from 1 to N/4 (relu) or N (erf): at most 300, printed with 5 points).
`--profile` adds where the time goes, by stage of the single-neuron Monte Carlo: the features phi(Xw)
of the draws, the tilts phi^T Ct phi, the moments E[phi phi^T] (one weighted pass over the draws each),
the field (Cholesky of g_v C + kappa), Newton's Jacobian products, MALA, and the sweeps of the fixed
point on the draws.

    python benchmarks/nonlinear_large.py [--P 1000] [--activation erf|relu] [--chi 1,2] [--profile]
                                         [--blas-threads T]
"""
import argparse
import sys
import time

import blas  # benchmarks/blas.py, before numpy


def _parser():
    ap = argparse.ArgumentParser(description="erf/relu kernel adaptation at P ~ 1000: cost in eighs, MCSE")
    ap.add_argument("--P", type=int, default=1000, help="training points (default 1000)")
    ap.add_argument("--activation", default="erf", choices=("erf", "relu"))
    ap.add_argument("--chi", default="1,2", help="the ladder, comma-separated; 'N' for N (default 1,2)")
    ap.add_argument("--profile", action="store_true", help="print the time by stage")
    blas.add_option(ap)
    return ap


ARGS = _parser().parse_args(sys.argv[1:] if __name__ == "__main__" else [])
blas.apply(ARGS.blas_threads)  # before numpy (and its BLAS) is imported

import cProfile  # noqa: E402
import pstats  # noqa: E402

import numpy as np  # noqa: E402

from msat.runtime import predict  # noqa: E402

#: (stage, (file suffix, function name) of the calls whose cumulative time it is)
STAGES = [
    ("features phi(Xw)", [("densities.py", "features"), ("densities.py", "smoothed_features")]),
    ("tilts phi^T Ct phi", [("adaptive_deep_linear.py", "tilt")]),
    # the sweeps' weighted moments, and the plain draw means of the sets' control variates
    ("moments E[phi phi^T]", [("adaptive_nonlinear.py", "weighted_moments"),
                              ("adaptive_nonlinear.py", "empirical_moments")]),
    ("field (Cholesky)", [("nonlinear_saddle.py", "field")]),
    ("Jacobian products", [("adaptive_nonlinear.py", "tilt_tangent")]),
    ("MALA", [("mala.py", "mala_chains")]),
]


def _stages(profile, total):
    stats = pstats.Stats(profile).stats
    for stage, keys in STAGES:
        seconds = sum(v[3] for (f, _, name), v in stats.items() if any(f.endswith(s) and name == n for s, n in keys))
        print(f"    {stage:24s} {seconds:8.1f} s  ({100 * seconds / total:4.1f}%)")
    calls = lambda fn: sum(v[0] for (f, _, name), v in stats.items()  # noqa: E731
                           if f.endswith("reweighted_saddle.py") and name == fn)
    sweeps, solves = calls("sweep"), calls("_solve_on")
    print(f"    sweeps of the fixed point on draws: {sweeps} in {solves} solves")


def main():
    P, D = ARGS.P, 200
    rng = np.random.default_rng(0)
    X = rng.standard_normal((P, D))
    y = np.tanh(X[:, 0] + X[:, 1] / 2)
    Xt = rng.standard_normal((50, D))
    N, kappa = 2 * P, 0.1
    chis = [float(N) if c.strip() == "N" else float(c) for c in ARGS.chi.split(",")]
    K = X @ X.T / D
    times = []
    for _ in range(3):
        t = time.perf_counter()
        np.linalg.eigh(K)
        times.append(time.perf_counter() - t)
    eigh = float(np.median(times))
    print(f"P = {P}, D = {D}, N = {N}, {ARGS.activation}; one eigh of the P x P kernel: {eigh:.3f} s", flush=True)
    nngp = predict(X, y, Xt, N=N, chi=chis, kappa=kappa, activation=ARGS.activation, method="nngp")
    profile = cProfile.Profile() if ARGS.profile else None
    t = time.perf_counter()
    if profile:
        profile.enable()
    res = predict(X, y, Xt, N=N, chi=chis, kappa=kappa, activation=ARGS.activation, method="adaptive", order=1)
    if profile:
        profile.disable()
    total = time.perf_counter() - t
    for k, (r, n) in enumerate(zip(res, nngp)):
        mcse = float(np.sqrt(np.mean(np.square(r["test_mean_mcse"]))))
        shift = float(np.sqrt(np.mean((np.asarray(r.test_mean) - n.test_mean) ** 2)))
        how = "cold, with the solver's setup" if k == 0 else "warm-started"
        print(f"chi = {r.chi:g} ({how}): {r.seconds:.1f} s = {r.seconds / eigh:.0f} eighs; test-mean MCSE {mcse:.2e}, "
              f"|adaptive - NNGP| {shift:.2e}, ratio {mcse / shift:.3f} (target <= 0.1); "
              f"estimator {r['observables']['estimator']}", flush=True)
    ladder = sum(r.seconds for r in res)
    target = " (target for a 5-point ladder from 1 to N/4 (relu) or N (erf): <= 300)" if len(res) == 5 else ""
    print(f"the ladder's {len(res)} points in all: {ladder:.1f} s = {ladder / eigh:.0f} eighs{target}", flush=True)
    if profile:
        print(f"  time by stage (all {len(res)} points, {total:.1f} s):")
        _stages(profile, total)


if __name__ == "__main__":
    main()
