"""What growing every failed locating stage cost at a far warm start (report; issues 13 and 16, docs/theory.md §6).

erf, teacher task, P points, D = 1.5 P, 20 test points, kappa = 0.2, N = 4P, ladder 1, sqrt N, N, order 1. The
point at chi = N starts from sqrt N's saddle, far from its own, and its locating stages stop at the edge of
their draws' reach several times before one holds the saddle. With the rule before (every failed stage on
twice the draws: REACH = 0) and the rule now (only a stage whose fixed point lay too far or did not exist),
alternating over seeds so that a shared machine's load falls on both alike: seconds of the chi = N point,
its stages, its test-mean Monte Carlo error, and the two rules' test means against each other in their
combined errors.

    python benchmarks/locating_stages.py [--P 40] [--seeds 4] [--blas-threads 1]
"""
import argparse
import math
import time

import blas  # benchmarks/blas.py, before numpy

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--P", type=int, default=40)
ap.add_argument("--seeds", type=int, default=4)
blas.add_option(ap)
ARGS = ap.parse_args()
blas.apply(ARGS.blas_threads)

import numpy as np  # noqa: E402

from msat.runtime import data  # noqa: E402
from msat.runtime.numerics import reweighted_saddle as rs  # noqa: E402
from msat.runtime.numerics.nonlinear_saddle import NonlinearSaddle  # noqa: E402


def chi_n_point(seed, reach):
    """(seconds, stages, test means, their MCSE) of the chi = N point of the ladder under the rule `reach`."""
    rs.REACH = reach
    P, N = ARGS.P, 4 * ARGS.P
    ds = data.builtin("teacher", P=P, D=int(1.5 * P), P_test=20, seed=0)
    S = NonlinearSaddle(ds.X, ds.y, ds.X_test, N, 0.2, 1.0, 1.0, "erf", 1, estimator="mc", seed=seed)
    C, state = None, None
    for chi in (1.0, math.sqrt(N), float(N)):
        t0 = time.perf_counter()
        st = S.solve(chi, C, mc_state=state)
        C, state = st.C, st.mc_state
    return (time.perf_counter() - t0, st.fixed.stages, np.asarray(st.predictions["test_mean"]),
            np.asarray(st.mc_error["test_mean"]))


def main():
    rules = {"grow every failed stage": 0.0, "grow only past a noise failure": rs.REACH}
    got = {name: [] for name in rules}
    for seed in range(1, ARGS.seeds + 1):
        for name, reach in rules.items():
            got[name].append(chi_n_point(seed, reach))
            sec, stages, _, err = got[name][-1]
            print(f"seed {seed}: {name:31s} {sec:6.2f} s, {stages} stages, test-mean MCSE (RMS) "
                  f"{math.sqrt(np.mean(err ** 2)):.2e}", flush=True)
    (a, b) = (np.array([g[2] for g in got[n]]) for n in rules)
    t_old, t_new = (np.median([g[0] for g in got[n]]) for n in rules)
    if ARGS.seeds < 2:  # the z-scores take each rule's spread over seeds, which one seed does not have
        agree = "no z-scores with one seed (they need each rule's spread over seeds: --seeds 2 or more)"
    else:
        z = (a.mean(0) - b.mean(0)) / np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
        agree = f"over {ARGS.seeds} seeds: RMS z {math.sqrt(np.mean(z ** 2)):.2f}, max |z| {np.max(np.abs(z)):.2f}"
    print(f"median seconds {t_old:.2f} against {t_new:.2f}: ratio {t_new / t_old:.2f}; test means of the two rules "
          f"{agree}")


if __name__ == "__main__":
    main()
