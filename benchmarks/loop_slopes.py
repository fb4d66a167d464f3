"""Measured log-log slopes of the loop-series error against the exact integral (docs/theory.md §3).

Ising task, P = 40, D = 60, P_test = 10, kappa = 0.5, N = 100..1600; error = max abs difference
over train means, test means and truncated test variances; points below 1e-13 (round-off) are
left out of the fit. Prints one row per (regime, variant) with the slope for L = 0..3 and the
expected -(L+1). The assertions live in tests/runtime/test_loop.py; this prints the numbers.

    python benchmarks/loop_slopes.py
"""
import math

import numpy as np

from msat.runtime import data, spectral
from msat.runtime.methods import exact, loop
from msat.runtime.numerics.saddle import ActionGradient, find_saddle

NS = [100, 200, 400, 800, 1600]


def main():
    ds = data.builtin("ising", P=40, D=60, P_test=10, seed=0)
    spec = spectral.spectrum(ds.X, ds.y, ds.X_test, 1.0)
    print(f"{'regime':8s} {'variant':8s} " + " ".join(f"{'L=%d' % L:>7s}" for L in range(4))
          + "   errors at N = 100 / 1600")
    print(f"{'expected':17s} " + " ".join(f"{-(L + 1):7.2f}" for L in range(4)) + "   (-(L+1))")
    for regime in ("chi=1", "chi=N"):
        for dressed in (False, True):
            errs = {L: [] for L in range(4)}
            for N in NS:
                chi = 1.0 if regime == "chi=1" else float(N)
                ex = exact.moments(spec, N, chi, 0.5, 1.0)
                sd = find_saddle(ActionGradient(spec, N, chi, 0.5, 1.0, dressed))
                for L in range(4):
                    v = loop.truncate(loop.series(spec, N, [sd.s], [chi], 0.5, 1.0, L, dressed))
                    errs[L].append(max(np.max(np.abs(v[k][0] - ex[k]))
                                       for k in ("train_mean", "test_mean", "test_var")))
            slopes = []
            for L in range(4):
                pts = [(math.log(n), math.log(e)) for n, e in zip(NS, errs[L]) if e > 1e-13]
                slopes.append(np.polyfit(*np.array(pts).T, 1)[0] if len(pts) >= 2 else float("nan"))
            tail = "  ".join(f"{errs[L][0]:.1e}/{errs[L][-1]:.1e}" for L in range(4))
            print(f"{regime:8s} {'dressed' if dressed else 'bare':8s} " + " ".join(f"{s:7.2f}" for s in slopes)
                  + "   " + tail)


if __name__ == "__main__":
    main()
