"""Deep kernel adaptation for erf/relu against sampled deep networks (docs/theory.md §2d), a report.

Two hidden layers of width N on the built-in teacher task (P = 10, D = 8, 4 test points, kappa = 0.3),
N = 4P, 8P, 16P: the largest |adaptive - sampled| over train and test means, the NNGP's miss, both
Monte Carlo standard errors, and the log-log slope of the adaptive error against N (target: -0.7 or
steeper, the P/N of the matrix saddle, with the sampler's MCSE under a third of the error). erf at
chi = N, relu at chi = sqrt(N) (where its saddle exists).

    python benchmarks/deep_adaptive_vs_sampled.py [--activation erf|relu] [--mc-samples M] [--samples S]
"""
import argparse
import time

import numpy as np

from msat.runtime import data, predict


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--activation", default="erf")
    ap.add_argument("--mc-samples", type=int, default=256000)
    ap.add_argument("--samples", type=int, default=16000)
    args = ap.parse_args()
    act = args.activation
    ds = data.builtin("teacher", P=10, D=8, P_test=4, seed=0)
    Ns, errs = [40, 80, 160], []
    for N in Ns:
        chi = float(N) if act == "erf" else float(np.sqrt(N))
        common = dict(widths=[N, N], kappa=0.3, activation=act)
        t = time.perf_counter()
        ad = predict(ds.X, ds.y, ds.X_test, chi=list(np.geomspace(1, chi, 4)), method="adaptive",
                     mc_samples=args.mc_samples, **common)[-1]
        t_ad = time.perf_counter() - t
        t = time.perf_counter()
        sm = predict(ds.X, ds.y, ds.X_test, chi=chi, method="sample", samples=args.samples, chains=4, **common)
        t_sm = time.perf_counter() - t
        nn = predict(ds.X, ds.y, ds.X_test, chi=chi, method="nngp", **common)
        keys = ("train_mean", "test_mean")
        err = max(float(np.max(np.abs(np.subtract(ad[k], sm[k])))) for k in keys)
        miss = max(float(np.max(np.abs(np.subtract(nn[k], sm[k])))) for k in keys)
        se_s = max(float(np.max(sm[k + "_mcse"])) for k in keys)
        se_a = max(float(np.max(ad[k + "_mcse"])) for k in keys)
        errs.append(err)
        print(f"{act}, N = {N}, chi = {chi:g}: |adaptive - sampled| {err:.2e}, NNGP miss {miss:.3f}, MCSE sampled "
              f"{se_s:.1e}, adaptive {se_a:.1e} (R-hat {sm['rhat_max']:.3f}; {t_ad:.0f} s adaptive, {t_sm:.0f} s "
              f"sampling)", flush=True)
    slope = float(np.polyfit(np.log(Ns), np.log(errs), 1)[0])
    print(f"log-log slope of the adaptive error against N: {slope:.2f} (target <= -0.7)")


if __name__ == "__main__":
    main()
