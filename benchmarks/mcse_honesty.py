"""Whether kernel adaptation's reported Monte Carlo errors are honest (report; issue 13, docs/theory.md §2e, §6).

A reported error is honest when independent repeats of the same computation scatter by as much as it says.
Teacher task, P points, D = 1.5 P, 10 test points, kappa = 0.2, order 1's saddle at one chi (warm-started from
chi = 1, seed 0), then the field's one loop at that saddle on `--seeds` independent draw seeds: the RMS over
test points of the loop's test-mean corrections' spread over seeds, against the RMS error each run reports
(their ratio near 1 is honest; over 1 understated), with the Pareto bound on the loop's prior weights
(`--tail`: proposal.TAIL_FINAL, what msat uses; 0.5, the bound before) and the seconds per loop. `--rule fit`
judges the prior weights' tail by the fit to 4,096 draws alone, as before relu's closed form
(field_cumulants.weight_tail) joined it.

`--whole` repeats the whole order-2 point instead (`msat.runtime.predict`, ladder 1 and chi, order 2, one Monte
Carlo seed per repeat, saddle and loop): the test means' spread over seeds against the reported
`test_mean_mcse`, and against the two errors that one is the larger of: order 1's and the loop's added in
quadrature, and the spread of order 1's replicates each paired with one loop draw set.

    python benchmarks/mcse_honesty.py [--activation relu] [--P 40] [--N 160] [--chi 4] [--seeds 16]
                                      [--tail 0.4] [--rule closed] [--whole] [--blas-threads 1]
"""
import argparse
import math
import time

import blas  # benchmarks/blas.py, before numpy

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--activation", default="relu", choices=("erf", "relu"))
ap.add_argument("--P", type=int, default=40)
ap.add_argument("--N", type=int, default=160)
ap.add_argument("--chi", default="4", help="a number or sqrtN")
ap.add_argument("--seeds", type=int, default=16)
ap.add_argument("--tail", type=float, default=None, help="the loop's Pareto bound (default proposal.TAIL_FINAL)")
ap.add_argument("--rule", default="closed", choices=("closed", "fit"),
                help="the prior weights' tail: the larger of closed form and fit (msat), or the fit alone (before)")
ap.add_argument("--whole", action="store_true", help="repeat the whole order-2 point, saddle and loop")
blas.add_option(ap)
ARGS = ap.parse_args()
blas.apply(ARGS.blas_threads)

import numpy as np  # noqa: E402

import msat.runtime as runtime  # noqa: E402
from msat.runtime import data  # noqa: E402
from msat.runtime.methods import nonlinear  # noqa: E402
from msat.runtime.numerics import field_cumulants, nonlinear_loop, proposal  # noqa: E402
from msat.runtime.numerics.field_cumulants import reweighted_prior  # noqa: E402
from msat.runtime.numerics.nonlinear_saddle import NonlinearSaddle  # noqa: E402


def rms(a):
    return float(np.sqrt(np.mean(np.square(a))))


def whole(ds, N, chi, act):
    """The whole order-2 point on --seeds Monte Carlo seeds."""
    parts, solve = {}, nonlinear.loop_correction

    def recorded(*a, replicas=(), **k):  # the errors the reported one is the larger of
        lp = solve(*a, replicas=replicas, **k)
        o1 = np.std([o["test_mean"] for *_, o in replicas], axis=0, ddof=1) / math.sqrt(len(replicas))
        parts["quadrature"] = np.sqrt(o1 ** 2 + lp.test_mcse ** 2)
        parts["pairs"] = lp.total_mcse["test_mean"] if lp.total_mcse else np.full(len(o1), np.nan)
        return lp

    nonlinear.loop_correction = recorded
    rows = {"means": [], "reported": [], "quadrature": [], "pairs": []}
    for seed in range(ARGS.seeds):
        t0 = time.perf_counter()
        res = runtime.predict(ds.X, ds.y, ds.X_test, N=N, chi=sorted({1.0, chi}), kappa=0.2, activation=act,
                              method="adaptive", order=2, seed=seed)[-1]
        rows["means"].append(res.test_mean)
        rows["reported"].append(res.extra["test_mean_mcse"])
        for k in ("quadrature", "pairs"):
            rows[k].append(parts[k])
        print(f"  seed {seed:2d}: RMS reported error {rms(res.extra['test_mean_mcse']):.3g}, "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
    spread = np.std(np.array(rows["means"]), axis=0, ddof=1)
    for k in ("reported", "quadrature", "pairs"):
        err = np.sqrt(np.mean(np.array(rows[k]) ** 2, axis=0))
        print(f"{k:10s}: spread over seeds RMS {rms(spread):.3g}, error RMS {rms(err):.3g}, ratio "
              f"{rms(spread) / rms(err):.3f} (worst point {np.max(spread / err):.2f})")


def main():
    P, N, act = ARGS.P, ARGS.N, ARGS.activation
    chi = math.sqrt(N) if ARGS.chi == "sqrtN" else float(ARGS.chi)
    if ARGS.whole:
        return whole(data.builtin("teacher", P=P, D=int(1.5 * P), P_test=10, seed=0), N, chi, act)
    if ARGS.tail is not None:
        nonlinear_loop.TAIL_FINAL = ARGS.tail
    if ARGS.rule == "fit":
        field_cumulants.weight_tail = nonlinear_loop.weight_tail = lambda *a: -math.inf
    ds = data.builtin("teacher", P=P, D=int(1.5 * P), P_test=10, seed=0)
    saddle = NonlinearSaddle(ds.X, ds.y, ds.X_test, N, 0.2, 1.0, 1.0, act, 1, estimator="mc", seed=0)
    st = saddle.solve(chi, C0=saddle.solve(1.0).C) if chi != 1.0 else saddle.solve(1.0)
    X_all = np.vstack([ds.X, ds.X_test])
    _, w, frac, _ = reweighted_prior(X_all, P, st.Ct, 1.0, act, 4096, 0)
    shape = field_cumulants.weight_tail(X_all, P, st.Ct, 1.0, act)
    print(f"{act}, P = {P}, N = {N}, chi = {chi:.4g}: prior weights at the saddle keep {frac:.3f} of 4096 draws, "
          f"Pareto k {proposal.tail_index(w):.3f} (closed form {shape:.3f})"
          f"; the loop's bound {nonlinear_loop.TAIL_FINAL}")
    corr, errs, secs, hows = [], [], [], []
    for seed in range(ARGS.seeds):
        t0 = time.perf_counter()
        lp = nonlinear_loop.loop_correction(ds.X, ds.X_test, ds.y, st.C, st.Cs, st.Ct, N, chi, 0.2, 1.0, 1.0, act,
                                            seed=1000 * seed + 1)
        secs.append(time.perf_counter() - t0)
        corr.append(lp.test)
        errs.append(lp.test_mcse)
        hows.append(lp.draws)
        print(f"  seed {seed:2d}: {lp.draws} ({lp.n_draws} draws), RMS correction {np.sqrt(np.mean(lp.test ** 2)):.4g}"
              f", RMS reported error {np.sqrt(np.mean(lp.test_mcse ** 2)):.3g}, {secs[-1]:.1f} s", flush=True)
    spread = np.std(np.array(corr), axis=0, ddof=1)
    reported = np.sqrt(np.mean(np.array(errs) ** 2, axis=0))
    rms_spread, rms_reported = np.sqrt(np.mean(spread ** 2)), np.sqrt(np.mean(reported ** 2))
    print(f"spread over seeds RMS {rms_spread:.3g}, reported RMS {rms_reported:.3g}, ratio "
          f"{rms_spread / rms_reported:.2f} (worst point {np.max(spread / reported):.2f}); "
          f"median {np.median(secs):.1f} s a loop; "
          f"{sum('MALA' in h for h in hows)} of {len(hows)} seeds' last sets MALA")


if __name__ == "__main__":
    main()
