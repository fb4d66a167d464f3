"""Linear networks at MNIST scale without a P x P matrix (docs/theory.md §2a: the thin SVD of X).

Measured in one run, each size in a fresh child process (so that peak memory is its own):
  1. P = 60,000, D = 784 (synthetic inputs of MNIST's shape, uniform on [0, 1]), 100 test points:
     one thin SVD of X (numpy, full_matrices=False) against msat's exact posterior at one chi plus a
     200-point ladder of `loop --order 2 --dressed` (two predict calls, as a user runs them; each
     factorises X itself). Targets: time ratio <= 3, extra peak memory (RSS over the data) <= 4x X.
  2. P = 8,000, D = 100: the same against the P x P eigendecomposition path (results to 1e-10, and
     the ladder alone <= 3x the SVD). That child forces the P x P path (spectral.basis and, so that
     spectrum() keeps the eigendecomposition instead of falling back to the thin SVD,
     spectral.ACCURATE_RTOL) and asserts that the thin SVD is not called.
  3. The scaling curve P = 2,000 .. 60,000 at D = 784: log-log slope of msat's cost (target <= 1.1).
  4. scikit-learn's bundled digits (P = 1,797, D = 64), if scikit-learn is installed.

    python benchmarks/thin_scale.py [--blas-threads 1] [--quick]
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

import numpy as np

N, KAPPA, P_TEST, LADDER = 1000, 0.1, 100, 200


def _data(P, D, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((P, D))
    Xt = rng.random((P_TEST, D))
    w = rng.standard_normal(D) / math.sqrt(D)
    y = np.tanh(3.0 * (X - 0.5) @ w) + 0.05 * rng.standard_normal(P)
    return X, y, Xt


def _rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB


def _msat(X, y, Xt, dense=False):
    from msat.runtime import predict, spectral

    thin_calls = []
    if dense:
        # the P x P path for real: spectrum() takes the P x P eigendecomposition, and keeps it although K's
        # smallest eigenvalues (zero for D < P, clipped at 0) lie under ACCURATE_RTOL x the largest, where msat
        # would otherwise fall back to the thin SVD; a negative tolerance switches that fallback off
        spectral.basis = lambda *_: spectral.DENSE
        spectral.ACCURATE_RTOL = -1.0
        thin = spectral.thin

        def counted_thin(*args, **kwargs):
            thin_calls.append(1)
            return thin(*args, **kwargs)

        spectral.thin = counted_thin
    chis = np.geomspace(1.0, N, LADDER).tolist()
    t0 = time.perf_counter()
    ex = predict(X, y, Xt, N=N, chi=float(N), kappa=KAPPA, method="exact")
    t1 = time.perf_counter()
    lad = predict(X, y, Xt, N=N, chi=chis, kappa=KAPPA, method="loop", order=2, dressed=True)
    t2 = time.perf_counter()
    assert ex.converged and all(r.converged for r in lad)
    assert not thin_calls, "the forced P x P path fell back to the thin SVD"
    return t1 - t0, t2 - t1, ex, lad


def child(P, D, dense):
    X, y, Xt = _data(P, D)
    from msat.runtime import predict

    predict(X[:50, :10], y[:50], Xt[:, :10], N=N, chi=[1.0, 2.0], kappa=KAPPA, method="loop", order=2,
            dressed=True)  # kernels loaded outside the measurement
    predict(X[:50, :10], y[:50], Xt[:, :10], N=N, chi=2.0, kappa=KAPPA, method="exact")
    base = _rss()
    t_exact, t_ladder, ex, lad = _msat(X, y, Xt, dense)
    extra = _rss() - base
    t0 = time.perf_counter()
    np.linalg.svd(X, full_matrices=False)
    t_svd = time.perf_counter() - t0
    out = {"P": P, "D": D, "svd": t_svd, "exact": t_exact, "ladder": t_ladder, "extra_bytes": extra,
           "X_bytes": X.nbytes, "basis": ex["params"]["basis"],
           "test_mean": [list(map(float, r.test_mean)) for r in [ex] + lad[::50]],
           "train_mean": [list(map(float, r.train_mean[:200])) for r in [ex] + lad[::50]]}
    print(json.dumps(out))


def run_child(P, D, dense=False, threads=None):
    cmd = [sys.executable, __file__, "--child", str(P), str(D)] + (["--dense"] if dense else [])
    env = None
    if threads:
        import os

        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise SystemExit(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _row(r):
    cost = r["exact"] + r["ladder"]
    return (f"P = {r['P']:6d}  D = {r['D']:4d}  svd {r['svd']:7.2f} s  exact {r['exact']:7.2f} s  "
            f"ladder {r['ladder']:7.2f} s  (exact + ladder)/svd {cost / r['svd']:5.2f}  "
            f"extra peak {r['extra_bytes'] / r['X_bytes']:4.2f} x X   [{r['basis']}]")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blas-threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="largest P 16,000 (a few minutes less)")
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dense", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child(*a.child, a.dense)
    th = a.blas_threads
    print("1. MNIST-sized linear network (exact at one chi + a 200-point loop ladder, order 2, dressed)")
    sizes = [2000, 4000, 8000, 16000] + ([] if a.quick else [32000, 60000])
    curve = [run_child(P, 784, threads=th) for P in sizes]
    for r in curve:
        print("  " + _row(r))
    big = curve[-1]
    print(f"  P = {big['P']}: (exact + ladder) / svd = {(big['exact'] + big['ladder']) / big['svd']:.2f} "
          f"(target <= 3); extra peak memory {big['extra_bytes'] / big['X_bytes']:.2f} x X (target <= 4)")
    lp, lc = np.log([r["P"] for r in curve]), np.log([r["exact"] + r["ladder"] for r in curve])
    slope = float(np.polyfit(lp, lc, 1)[0])
    print(f"3. log-log slope of msat's cost over P = {sizes[0]}..{sizes[-1]} at D = 784: {slope:.2f} (target <= 1.1)")
    print("2. P = 8,000, D = 100 against the P x P path")
    thin, dense = run_child(8000, 100, threads=th), run_child(8000, 100, dense=True, threads=th)
    for r in (thin, dense):
        print("  " + _row(r))
    diff = max(float(np.max(np.abs(np.subtract(thin[k], dense[k])))) for k in ("test_mean", "train_mean"))
    print(f"  max |thin - dense| over test and train means: {diff:.2e} (target 1e-10); ladder / svd "
          f"{thin['ladder'] / thin['svd']:.2f} (target <= 3); P x P path / thin path "
          f"{(dense['exact'] + dense['ladder']) / (thin['exact'] + thin['ladder']):.0f}x")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("4. scikit-learn is not installed: digits skipped")
        return
    from msat.runtime import predict

    Xd, yd = load_digits(return_X_y=True)
    Xd, yd = Xd / 16.0, (yd - yd.mean()) / yd.std()
    t0 = time.perf_counter()
    r = predict(Xd, yd, Xd[:100], N=N, chi=np.geomspace(1, N, LADDER).tolist(), kappa=KAPPA, method="loop",
                order=2, dressed=True)
    print(f"4. digits (P = {len(yd)}, D = 64): 200-point ladder {time.perf_counter() - t0:.2f} s "
          f"[{r[0]['params']['basis']}]")


if __name__ == "__main__":
    main()
