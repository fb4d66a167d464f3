"""Where ReLU kernel adaptation stops having a saddle (docs/theory.md §6, docs/overview.md), in one run.

The adapted single-neuron law q(w) ∝ N(w; 0, g_w/D) exp(phi(Xw)^T Ct phi(Xw)) of a relu network can be
normalised only while the tilt stays below the prior's D/(2 g_w) |w|^2 along every ray; msat measures
tilt/prior at the saddle over fixed directions (a deterministic function of the saddle's field). For
each width N, kernel adaptation (order 1, the default estimator) climbs a geometric chi ladder from 1
to N, warm-started; each solved point records tilt/prior at its saddle, and the ladder's first failure
marks the boundary. Teacher task, P = 20, D = 30, kappa = 0.2, 10 test points (issue 13's setting).
Prints a table and writes the figure (tilt/prior against chi/N per N; a cross marks where the ladder
stopped, at height 1, with its reason printed: the boundary itself, or the solver losing the saddle).

    python benchmarks/relu_boundary.py [--P 20] [--Ns 40,80,160] [--points 13] [--out docs/fig_relu_boundary.png]
"""
import argparse
import sys

import blas  # benchmarks/blas.py, before numpy


def _parser():
    ap = argparse.ArgumentParser(description="relu kernel adaptation: the normalisability boundary in chi/N")
    ap.add_argument("--P", type=int, default=20)
    ap.add_argument("--Ns", default="40,80,160")
    ap.add_argument("--points", type=int, default=13, help="chi ladder points from 1 to N (geometric)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="docs/fig_relu_boundary.png")
    blas.add_option(ap)
    return ap


ARGS = _parser().parse_args(sys.argv[1:] if __name__ == "__main__" else [])
blas.apply(ARGS.blas_threads)

import numpy as np  # noqa: E402

from msat.runtime import data  # noqa: E402
from msat.runtime.errors import ConvergenceError  # noqa: E402
from msat.runtime.numerics.nonlinear_saddle import NonlinearSaddle  # noqa: E402


def ladder(ds, N):
    """(chi, tilt/prior at the saddle or None, reason) along the ladder, stopping at the first failure."""
    s = NonlinearSaddle(ds.X, ds.y, ds.X_test, N, 0.2, 1.0, 1.0, "relu", 1, estimator="mc", seed=ARGS.seed)
    out, C, state = [], None, None
    for chi in np.geomspace(1.0, N, ARGS.points):
        try:
            st = s.solve(float(chi), C, mc_state=state)
        except ConvergenceError as err:
            out.append((float(chi), None, str(err)))
            break
        C, state = st.C, st.mc_state
        out.append((float(chi), s.normalisable(st.Ct)[1], ""))
    return out


def main():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    P = ARGS.P
    ds = data.builtin("teacher", P=P, D=int(1.5 * P), P_test=10, seed=0)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for N in (int(n) for n in ARGS.Ns.split(",")):
        pts = ladder(ds, N)
        solved = [(c / N, r) for c, r, _ in pts if r is not None]
        line = ax.plot(*zip(*solved), "o-", label=f"N = {N} (P/N = {P / N:.2g})")[0] if solved else None
        for c, r, why in pts:
            if r is None:
                ax.plot([c / N], [1.0], "x", ms=10, color=line.get_color() if line else "k",
                        label=f"N = {N}: ladder stopped at chi/N = {c / N:.2g}")
                print(f"N = {N}: no saddle at chi = {c:.3g} (chi/N = {c / N:.3g}): {why}")
        last = solved[-1] if solved else (0.0, 0.0)
        print(f"N = {N}: solved up to chi/N = {last[0]:.3g}, tilt/prior there {last[1]:.3f}; "
              + ", ".join(f"{c:.3g}:{r:.2f}" for c, r in solved))
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("chi / N")
    ax.set_ylabel("tilt / prior at the saddle (max over rays)")
    ax.set_title(f"ReLU kernel adaptation: normalisability of q(w) (teacher, P = {P}, D = {int(1.5 * P)}, kappa = 0.2)",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ARGS.out, dpi=110)
    print(f"wrote {ARGS.out}")


if __name__ == "__main__":
    main()
