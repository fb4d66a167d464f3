"""Sweep throughput and overhead (targets: 64 tasks on 2 local workers >= 1.6x faster than serially;
per-task overhead <= 50 ms on no-op tasks).

1. Real tasks: 64 tasks of `--activation erf --method nngp` on the teacher task (P = 1600, D = 50,
   16 seeds x 2 widths x 2 kappas, a 3-point chi ladder each: data, kernel and one eigendecomposition
   per task). Serially: the sweep's own task function in a loop in this process, one BLAS thread and
   one numba thread (as in each worker).
   In parallel: `runtime.sweep.sweep` on a local cluster of 2 (and 1 and 4) worker processes,
   wall time including the cluster's start-up and every store write. Every store must equal the
   serial results to 1e-12 (same numbers with any number of workers).
2. Overhead: the same sweep machinery (scheduling, results back to the client, Zarr region writes)
   on no-op tasks that return a task's arrays at once; the per-task cost is the slope of wall time
   between 16 and 80 tasks, so the cluster's start-up drops out.

Run: python benchmarks/sweep_scale.py [--quick]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def noop_task(g, task, source, extra):
    """A task that costs nothing: a task's arrays (NaN), as run_task would return them."""
    from msat.runtime import labelled

    return labelled.empty(g, task, task["P"], task["P_test"]), "", None


def _store_arrays(path, g):
    import xarray as xr

    st = xr.open_zarr(path).load()
    return st


def main():
    from threadpoolctl import threadpool_limits

    from msat.runtime import grid, sweep

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="16 real tasks, 2 workers only")
    a = ap.parse_args()
    seeds = "0..3" if a.quick else "0..15"
    g = grid.build(N="100,200", chi="1,sqrtN,N", kappa="0.5,1", method="nngp", activation="erf", seed=seeds,
                   P="1600", D="50", P_test="50", source="teacher")
    src = ("builtin", "teacher")
    tasks = list(g.tasks())
    tmp = Path(tempfile.mkdtemp(prefix="msat-sweep-bench-"))
    try:
        import numba

        numba.set_num_threads(1)  # as in each worker: one BLAS and one numba thread
        with threadpool_limits(1):
            t0 = time.perf_counter()
            serial = {idx: sweep.run_task(g, t, src, {})[0] for idx, t in tasks}
            t_serial = time.perf_counter() - t0
        print(f"{len(tasks)} tasks serially (one BLAS and numba thread): {t_serial:.2f} s "
              f"({t_serial / len(tasks) * 1e3:.0f} ms per task)")
        for k in ((2,) if a.quick else (2, 1, 4)):
            out = tmp / f"w{k}.zarr"
            t0 = time.perf_counter()
            fails = sweep.sweep(g, src, out, workers=k)
            t_par = time.perf_counter() - t0
            st = _store_arrays(out, g)
            worst = 0.0
            for idx, _ in tasks:
                sel = dict(zip(grid.DIMS[:-1], idx))
                for key in ("train_mean", "test_mean", "test_var"):
                    got = st[key].isel(sel).values
                    ref = serial[idx][key]
                    assert np.array_equal(np.isnan(got), np.isnan(ref))
                    worst = max(worst, float(np.nanmax(np.abs(got - ref))))
            assert not fails and bool(st["done"].all()) and worst <= 1e-12, (fails, worst)
            print(f"{len(tasks)} tasks on {k} worker(s): {t_par:.2f} s, speed-up over serial {t_serial / t_par:.2f}x "
                  f"(target >= 1.6x on 2), max |store - serial| = {worst:.1e}")
        walls = {}
        for n_seeds in (4, 20):
            gn = grid.build(N="100,200", chi="1,sqrtN,N", kappa="0.5,1", method="nngp", activation="erf",
                            seed=f"0..{n_seeds - 1}", P="1000", D="50", P_test="50", source="teacher")
            out = tmp / f"noop{n_seeds}.zarr"
            t0 = time.perf_counter()
            sweep.sweep(gn, src, out, workers=2, task=noop_task)
            walls[len(list(gn.tasks()))] = time.perf_counter() - t0
        (n1, w1), (n2, w2) = sorted(walls.items())
        per_task = (w2 - w1) / (n2 - n1)
        print(f"no-op tasks on 2 workers: {n1} in {w1:.2f} s, {n2} in {w2:.2f} s; overhead per task "
              f"{per_task * 1e3:.1f} ms (target <= 50 ms)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
