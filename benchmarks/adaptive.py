"""Kernel adaptation timings (issue 3), measured in one run.

(a) linear network, P = 1000, D = 500: one warm-started chi point of the structured saddle
    (Newton in the eigenbasis of K) plus its predictions and observables, as a ratio to one
    numpy.linalg.eigh of the P x P kernel. Target <= 10.
(b) erf network, P = 200: the single-neuron Monte Carlo saddle at one chi (wall time), and the
    cumulant-expansion saddle for comparison; an estimator that refuses the point (a separated mode
    of q its draws never reach) is reported as refused, with its time and message.

    python benchmarks/adaptive.py [--quick]
"""
import argparse
import statistics
import time

import numpy as np

from msat.runtime import data, spectral
from msat.runtime.errors import MsatError
from msat.runtime.numerics.linear_saddle import LinearSaddle
from msat.runtime.numerics.nonlinear_saddle import NonlinearSaddle


def timed(f, reps=3):
    ts = []
    out = None
    for _ in range(reps):
        t = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    P, D = (300, 150) if args.quick else (1000, 500)
    ds = data.builtin("ising", P=P, D=D, P_test=20, seed=0)
    K = ds.X @ ds.X.T / D
    spec = spectral.spectrum(ds.X, ds.y, ds.X_test, 1.0)
    N = 4 * P
    chis = np.geomspace(1, N, 30)
    for order in (0, 1):
        solver = LinearSaddle(spec, N, 0.5, 1.0, order)
        st = solver.solve(chis[0])
        a_prev = st.a
        t_eigh, _ = timed(lambda: np.linalg.eigh(K))

        # warm-started points along the ladder: each from its predecessor
        times, iters = [], []
        a = a_prev
        for chi in chis[1:11]:
            t = time.perf_counter()
            st = solver.solve(chi, a)
            pr = solver.predictions(st)
            solver.observables(st, pr["B"], pr["E"], 1.0, D)
            times.append(time.perf_counter() - t)
            iters.append(st.iterations)
            a = st.a
        t_pt = statistics.median(times)
        print(f"(a) linear order {order}, P={P}, D={D}, r={solver.r}: warm-started chi point "
              f"{t_pt:.3f} s ({statistics.median(iters):.0f} Newton steps), eigh(K) {t_eigh:.3f} s, "
              f"ratio {t_pt / t_eigh:.2f} (target <= 10)")
    Pn = 60 if args.quick else 200
    dn = data.builtin("ising", P=Pn, D=Pn // 2, P_test=10, seed=1)
    for est, kw in (("cumulant", {"n_prior": 20000}), ("mc", {"n_chains": 64, "n_steps": 400})):
        t = time.perf_counter()
        s = NonlinearSaddle(dn.X, dn.y, dn.X_test, 4 * Pn, 0.5, 1.0, 1.0, "erf", 1, estimator=est, **kw)
        try:
            st = s.solve(float(Pn) / 4)
        except MsatError as err:  # a refusal is a result: at P = 200 the prior's draws miss q's aligned mode
            print(f"(b) erf, P={Pn}, D={Pn // 2}, N={4 * Pn}, chi={Pn / 4:g}, estimator={est}: refused after "
                  f"{time.perf_counter() - t:.2f} s ({type(err).__name__}: {err})")
            continue
        dt = time.perf_counter() - t
        err = float(np.max(st.mc_error["test_mean"]))
        print(f"(b) erf, P={Pn}, D={Pn // 2}, N={4 * Pn}, chi={Pn / 4:g}, estimator={est}: {dt:.2f} s wall "
              f"(max test-mean MC error {err:.2e})")


if __name__ == "__main__":
    main()
