"""Where the Monte Carlo error of erf kernel adaptation near mean field comes from, and what Stein
control variates do about it (report; issue 13, docs/theory.md §6).

Teacher task, P points, D = 1.5 P, 10 test points, kappa = 0.2, N = 4P, warm-started ladder 1, sqrt N,
N, order 1, default estimator. At the last chi:
 (a) the replica split: each replica's test-mean deviation from the union's, through C (A and alpha)
     and through C* (the test moments at the replica's own solution);
 (b) at the union's solution C held fixed, the spread over --sets independent draw sets of the test
     means from C* estimated by: plain importance weights; msat's Gaussian control variate; the
     Stein controls of stein_controls_lib fitted on the same draws; the same cross-fitted; and the
     mean paired difference (in standard errors) of the Stein estimates from msat's, a bias check;
 (c) end to end, each set solved alone as msat's replicas are: the spread of one set's test means
     with msat's estimator, and with the train moments also refined (cross-fitted) and the fixed point
     moved by -(I - J)^-1 (the refinement) through the generated Jacobian (GMRES), then C* refined at
     the moved point.

    python benchmarks/stein_controls.py [--P 20] [--sets 40] [--draws 20000] [--blas-threads 1]
"""
import argparse
import inspect
import math
import sys

import blas  # benchmarks/blas.py, before numpy

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--P", type=int, default=20)
ap.add_argument("--sets", type=int, default=40)
ap.add_argument("--draws", type=int, default=20000)
ap.add_argument("--activation", default="erf", choices=("erf", "relu"))
blas.add_option(ap)
ARGS = ap.parse_args()
blas.apply(ARGS.blas_threads)

import numpy as np  # noqa: E402

import stein_controls_lib as sc  # noqa: E402
from scipy.sparse.linalg import LinearOperator, gmres  # noqa: E402

from msat.runtime import data  # noqa: E402
from msat.runtime.numerics import draw_sets, reweighted_saddle as rs  # noqa: E402
from msat.runtime.numerics.proposal import proposal  # noqa: E402
from msat.runtime.numerics.nonlinear_saddle import NonlinearSaddle  # noqa: E402

# the Gaussian sets keep their neurons here (the controls need them)
exec(inspect.getsource(draw_sets.gaussian_set).replace("float(draws), None, control)", "float(draws), W, control)"),
     draw_sets.__dict__)


def rms(a):
    return float(np.sqrt(np.mean(np.asarray(a) ** 2)))


def main():
    P, N = ARGS.P, 4 * ARGS.P
    ds = data.builtin("teacher", P=P, D=int(1.5 * P), P_test=10, seed=0)
    S = NonlinearSaddle(ds.X, ds.y, ds.X_test, N, 0.2, 1.0, 1.0, ARGS.activation, 1, estimator="mc", seed=1)
    C0, ms = None, None
    for chi in (1.0, math.sqrt(N), float(N)):
        st = S.solve(chi, C0, mc_state=ms)
        C0, ms = st.C, st.mc_state
    chi, f = float(N), st.fixed
    print(f"{ARGS.activation}, P = {P}, N = {N}, chi = N: test-mean MCSE (RMS) {rms(st.mc_error['test_mean']):.2e}, "
          f"final draws: {f.draws}, effective fraction {f.effective_fraction:.2f}")
    out = lambda C, Cs, css: S._outputs(C, Cs, css, chi)["test_mean"]  # noqa: E731
    base = out(f.C, f.Cs, f.css)
    print("(a) replica deviations from the union (RMS over test points): through C | through C*")
    for Cr, Csr, cssr in f.replicas:
        print(f"    {rms(out(Cr, f.Cs, f.css) - base):.2e} | {rms(out(f.C, Csr, f.css) - base):.2e}")
    Cu, cssu = f.C, f.css
    Ct0 = S.field(Cu, chi)[2]
    d, _ = draw_sets.mala_set(S, Ct0, ARGS.draws, 5, keep=True)
    w0 = np.exp(d.logw0 - d.logw0.max())
    Sigma = proposal(S, d, w0 / w0.sum(), Ct0, 6007)
    EG = draw_sets.gaussian_moments(S, Sigma)[1]
    est = {k: [] for k in ("plain weights", "Gaussian control (msat)", "Stein, same draws", "Stein, cross-fitted")}
    M, Q = ARGS.draws, ds.X_test.shape[0]
    for k in range(ARGS.sets):
        g = draw_sets.gaussian_set(S, Sigma, Ct0, M, 1000 + k)
        w = np.exp(g.logw0 - g.logw0.max())
        w /= w.sum()
        IS = np.einsum("m,mp,mq->pq", w, g.F[:, :P], g.F[:, P:])
        plain = g.F[:, :P].T @ g.F[:, P:] / M
        est["plain weights"].append(out(Cu, IS, cssu))
        est["Gaussian control (msat)"].append(out(Cu, IS + EG - plain, cssu))
        control = (0.0, EG - plain, np.zeros(Q))
        # (only C* is read: c**'s Gaussian column is a placeholder)
        same = sc._Fold(S, Ct0, g.W, g.F, g.Fv, w, sc._directions(S, g.W, w), sc.DIRECTIONS,
                        np.concatenate([EG.ravel(), np.zeros(Q)]))
        est["Stein, same draws"].append(out(Cu, same.corrected(*same.coefficients())[:P * Q].reshape(P, Q), cssu))
        Cs_x, _ = sc.refine(S, Ct0, g.W, g.F, g.Fv, w, control, IS + EG - plain, cssu)
        est["Stein, cross-fitted"].append(out(Cu, Cs_x, cssu))
        print(f"\r    set {k + 1}/{ARGS.sets}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    ref = np.array(est["Gaussian control (msat)"])
    print(f"(b) C held at the union's solution, {ARGS.sets} sets of {M} Gaussian-proposal draws: spread of one set's "
          "test means (RMS over test points), and the largest |z| of the mean paired difference from msat's")
    for name, v in est.items():
        v = np.array(v)
        dz = v - ref
        se = dz.std(0, ddof=1) / math.sqrt(len(dz))
        z = np.max(np.abs(dz.mean(0)) / np.where(se > 0, se, np.inf))
        print(f"    {name:26s} {rms(v.std(0, ddof=1)):.2e}   max |z| {z:.1f}")
    end_to_end(S, chi, Cu, Sigma, Ct0, out)


def moved_fixed_point(S, chi, g, C, Ct0):
    """(C, C*, c**) of the set g solved at C (by msat), with C's map refined and the fixed point moved."""
    P = S.P
    sweep, jvp = rs.fixed_point_map(S, chi, g, Ct0)
    at = sweep(C.ravel())
    fm = sc.train_moments(P)
    EG = np.ravel(g.control[0]) + sum(fm(g.F[s:s + 4096], None).sum(0) for s in range(0, len(g.F), 4096)) / len(g.F)
    est = sc.cross_fitted(S, S.field(C, chi)[2], g.W, g.F, g.Fv, at[1][5], EG, fm).reshape(P, P)
    delta = at[0] - (0.5 * (est + est.T)).ravel()
    op = LinearOperator((P * P, P * P), matvec=lambda v: v - jvp(C.ravel(), v, at))
    x, info = gmres(op, -delta, rtol=1e-10, atol=0.0, restart=200, maxiter=20)
    C2 = C + 0.5 * (x.reshape(P, P) + x.reshape(P, P).T)
    aux = sweep(C2.ravel())[1]  # (C*, c**, fraction, A, alpha, weights) at the moved point
    Cs2, css2 = sc.refine(S, S.field(C2, chi)[2], g.W, g.F, g.Fv, aux[5], g.control, aux[0], aux[1])
    return C2, Cs2, css2


def end_to_end(S, chi, Cu, Sigma, Ct0, out):
    base, moved = [], []
    for k in range(min(ARGS.sets, 16)):
        g = draw_sets.gaussian_set(S, Sigma, Ct0, ARGS.draws, 1000 + k)
        Cr, Csr, cssr, _, _, ok = rs._solve_on(S, chi, Cu, g, Ct0, 1e-10)
        base.append(out(Cr, Csr, cssr))
        moved.append(out(*moved_fixed_point(S, chi, g, Cr, Ct0)))
        print(f"\r    set {k + 1}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    base, moved = np.array(base), np.array(moved)
    dz = moved - base
    z = np.max(np.abs(dz.mean(0)) / (dz.std(0, ddof=1) / math.sqrt(len(dz))))
    print(f"(c) each of {len(base)} sets solved alone: spread of one set's test means {rms(base.std(0, ddof=1)):.2e} "
          f"(msat), {rms(moved.std(0, ddof=1)):.2e} (C and C* refined, fixed point moved; max paired |z| {z:.1f})")


if __name__ == "__main__":
    main()
