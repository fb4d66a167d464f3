"""Benchmark: generated numba kernels vs sympy.lambdify(numpy) of the same expressions.

The kernels in msat.generated.rescaling_o{L} were emitted from the KernelSpecs of
msat.derive.kernels. Here every Statement of those specs is turned into a plain
``sympy.lambdify(symbols, expr, "numpy")`` function, evaluated vectorised (nodes j as a column,
modes k as a row: one NumPy call per statement for all J x K pairs) and summed over modes with
NumPy -- the straightforward NumPy route that the generated code replaces. Both routes fill the
same output arrays for J nodes and K modes; they are first checked to agree (np.allclose,
rtol 1e-10), then timed interleaved in one run (median of --reps repetitions; the lambdify()
construction and the numba compilation are excluded: kernels are warmed up on a tiny problem).

Kernels: action_derivatives, observable_tables, weights_bare. Target: generated >= 3x faster
(overall = sum of lambdify times / sum of generated times).

Not a test: nothing is asserted and the exit code is 0 whatever the speed-up.

    python benchmarks/kernels_vs_lambdify.py            # J=200 nodes, K=2000 modes, L=2
    python benchmarks/kernels_vs_lambdify.py --quick    # J=20, K=200
"""
from __future__ import annotations

import argparse
import re
import statistics
import time

import numpy as np
import sympy as sp

from msat import generated
from msat.derive.kernels import rescaling as kernels

TARGET = 3.0
RTOL = 1e-10
N, KAPPA, G_V = 4000.0, 0.5, 1.0

_TARGET_RE = re.compile(r"^\s*(\w+)\[(.*)\]\s*$")


# ---------------------------------------------------------------------------------------------
# lambdify route
# ---------------------------------------------------------------------------------------------
def _parse_target(target):
    """'dS0[j, 3]' -> ('dS0', ('j', 3)); 'train_mean_modes[j, 2, k]' -> (name, ('j', 2, 'k'))."""
    m = _TARGET_RE.match(target)
    if not m:
        raise ValueError(f"cannot parse target {target!r}")
    idx = tuple(int(t) if t.strip().lstrip("-").isdigit() else t.strip()
                for t in m.group(2).split(","))
    return m.group(1), idx


class Lambdified:
    """One KernelSpec as lambdified NumPy functions, evaluated for all nodes/modes at once."""

    def __init__(self, spec):
        self.spec = spec
        self.node = [self._compile(st) for st in spec.node]
        self.mode = [self._compile(st) for st in spec.mode]

    @staticmethod
    def _compile(st):
        expr = sp.sympify(st.expr)
        syms = sorted(expr.free_symbols, key=lambda x: x.name)
        fn = sp.lambdify(syms, expr, "numpy")
        name, idx = _parse_target(st.target)
        return fn, [x.name for x in syms], name, idx, st.op

    @staticmethod
    def _index(idx):
        return tuple(slice(None) if isinstance(i, str) else i for i in idx)

    def __call__(self, values, out):
        """values: symbol name -> array (node: shape (J,); mode: (J, 1) / (1, K)) or scalar;
        out: array name -> output array (filled in place, like the generated kernel)."""
        node_vals, mode_vals = values
        for fn, names, arr, idx, op in self.node:
            v = fn(*[node_vals[n] for n in names])
            if op == "=":
                out[arr][self._index(idx)] = v
            else:
                out[arr][self._index(idx)] += v
        for fn, names, arr, idx, op in self.mode:
            v = fn(*[mode_vals[n] for n in names])
            if "k" in idx:  # per-mode table entry: out[j, n, k] = summand
                out[arr][self._index(idx)] = v
            else:  # spectral sum: out[j, n] += sum_k summand
                v = np.asarray(v)
                if v.ndim < 2 or v.shape[1] == 1:  # independent of the mode: K equal terms
                    v = np.broadcast_to(v, mode_vals["_shape"])
                if op == "+=":
                    out[arr][self._index(idx)] += v.sum(axis=1)
                else:
                    out[arr][self._index(idx)] = v.sum(axis=1)


def spectral_values(s, chi, lam, yt2=None):
    """Symbol values for a spectral kernel: nodes as (J,) / (J, 1), modes as (1, K)."""
    scal = {"N": N, "kappa": KAPPA, "g_v": G_V}
    node = dict(scal, s=s, chi=chi)
    mode = dict(scal, s=s[:, None], chi=chi[:, None], lam=lam[None, :],
                _shape=(s.shape[0], lam.shape[0]))
    if yt2 is not None:
        mode["yt2_modes_k"] = yt2[None, :]
        mode["mult_modes_k"] = np.ones((1, lam.shape[0]))
    return node, mode


def weights_values(dA, dB):
    vals = {f"A_{n}": dA[:, n] for n in range(dA.shape[1])}
    if dB is not None:
        vals.update({f"B_{n}": dB[:, n] for n in range(dB.shape[1])})
    return vals, vals


# ---------------------------------------------------------------------------------------------
# problem and the two routes per kernel
# ---------------------------------------------------------------------------------------------
def make_problem(J, K, seed=0):
    """A realistic spectrum (eigenvalues of a linear kernel with D = K/2, half zero modes), the
    squared projections of a +-1 target, and J ladder nodes (chi geometric, s around 1)."""
    rng = np.random.default_rng(seed)
    D = max(1, K // 2)
    Xs = rng.standard_normal((K, D))
    lam = np.clip(np.linalg.eigvalsh((Xs @ Xs.T) / D), 0.0, None)
    yt = rng.standard_normal(K)
    yt2 = np.ascontiguousarray(yt * yt)
    chi = np.geomspace(1.0, N, J)
    s = rng.uniform(0.5, 2.0, J)
    return np.ascontiguousarray(s), chi, np.ascontiguousarray(lam), yt2


class Bench:
    """Both routes of the three kernels at one order, on one problem, with their outputs."""

    def __init__(self, L, s, chi, lam, yt2):
        self.L, self.s, self.chi, self.lam, self.yt2 = L, s, chi, lam, yt2
        self.mod = generated.rescaling(L)
        J, K = s.shape[0], lam.shape[0]
        nd, nw = 2 * L + 3, 2 * L + 1
        self.spec_ad = kernels.action_derivatives_spec(L)
        self.spec_ot = kernels.observable_tables_spec(L)
        self.spec_wb = kernels.weights_spec(L, dressed=False)
        self.lam_ad = Lambdified(self.spec_ad)
        self.lam_ot = Lambdified(self.spec_ot)
        self.lam_wb = Lambdified(self.spec_wb)
        self.vals_spec_y = spectral_values(s, chi, lam, yt2)
        self.vals_spec = spectral_values(s, chi, lam)
        self.ot_outputs = self.spec_ot.args[5:]  # train, test, var (J,n,K); var_scalar, s (J,n)

        def ad_out():
            return {"dS0": np.empty((J, nd)), "dS1": np.empty((J, nd))}

        def ot_out():
            return {name: np.empty((J, nw, K)) if name.endswith("_modes") else np.empty((J, nw))
                    for name in self.ot_outputs}

        self.out = {(route, k): f() for route in ("gen", "lam")
                    for k, f in (("ad", ad_out), ("ot", ot_out))}
        # weights take the action derivatives at the nodes as input (generated values)
        self.run_gen_ad()
        self.dA = self.out["gen", "ad"]["dS0"].copy()
        self.dB = self.out["gen", "ad"]["dS1"].copy()
        self.vals_w = weights_values(self.dA, self.dB)
        self.out["gen", "wb"] = {"w": np.empty((J, L + 1, nw))}
        self.out["lam", "wb"] = {"w": np.empty((J, L + 1, nw))}

    # generated
    def run_gen_ad(self):
        o = self.out["gen", "ad"]
        self.mod.action_derivatives(self.s, self.chi, N, KAPPA, G_V, self.lam, self.yt2,
                                    np.ones_like(self.lam), o["dS0"], o["dS1"])

    def run_gen_ot(self):
        o = self.out["gen", "ot"]
        self.mod.observable_tables(self.s, self.chi, KAPPA, G_V, self.lam,
                                   *[o[name] for name in self.ot_outputs])

    def run_gen_wb(self):
        self.mod.weights_bare(self.dA, self.dB, self.out["gen", "wb"]["w"])

    # lambdify
    def run_lam_ad(self):
        self.lam_ad(self.vals_spec_y, self.out["lam", "ad"])

    def run_lam_ot(self):
        self.lam_ot(self.vals_spec, self.out["lam", "ot"])

    def run_lam_wb(self):
        self.lam_wb(self.vals_w, self.out["lam", "wb"])

    def compare(self, key):
        """max relative difference (elementwise, over entries with |ref| > 0) and allclose."""
        worst, ok = 0.0, True
        for name, ref in self.out["gen", key].items():
            got = self.out["lam", key][name]
            ok &= bool(np.allclose(got, ref, rtol=RTOL, atol=0.0))
            nz = ref != 0
            if np.any(nz):
                worst = max(worst, float(np.max(np.abs(got[nz] - ref[nz]) / np.abs(ref[nz]))))
            if np.any(got[~nz] != 0):  # nonzero where the kernel gives exactly zero
                worst = np.inf
        return worst, ok


def per_call(fn, min_time):
    """Seconds per call, calls repeated until one measurement takes >= min_time."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time:
            return dt / n, n
        n = max(n * 2, int(n * min_time / max(dt, 1e-9) * 1.2))


def main(argv=None):
    ap = argparse.ArgumentParser(description="generated numba kernels vs sympy.lambdify(numpy)")
    ap.add_argument("--quick", action="store_true", help="J=20, K=200 instead of J=200, K=2000")
    ap.add_argument("--order", type=int, default=2, help="loop order L (default 2)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per timed kernel (median)")
    ap.add_argument("--min-time", type=float, default=0.05,
                    help="seconds per measurement (fast calls are repeated; default 0.05)")
    args = ap.parse_args(argv)
    J, K = (20, 200) if args.quick else (200, 2000)
    L = args.order

    # warm-up: compile (or load from numba's cache) all three kernels on a tiny problem with
    # the same argument types
    Bench(L, *make_problem(2, 3, seed=1))

    b = Bench(L, *make_problem(J, K))
    rows = [("action_derivatives", "ad"), ("observable_tables", "ot"), ("weights_bare", "wb")]

    # correctness first (outputs poisoned with NaN so that an entry either route leaves unset
    # shows up as a mismatch)
    for arrays in b.out.values():
        for arr in arrays.values():
            arr.fill(np.nan)
    for _, key in rows:
        getattr(b, f"run_gen_{key}")()
        getattr(b, f"run_lam_{key}")()
    checks = {key: b.compare(key) for _, key in rows}

    # timing, interleaved: every (kernel, route) once per round
    times = {(key, route): [] for _, key in rows for route in ("gen", "lam")}
    for _ in range(args.reps):
        for _, key in rows:
            for route in ("gen", "lam"):
                t, _n = per_call(getattr(b, f"run_{route}_{key}"), args.min_time)
                times[key, route].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}

    print(f"kernels_vs_lambdify: rescaling_o{L}, J={J} nodes, K={K} modes, median of "
          f"{args.reps} interleaved runs (per call); kernels from {b.mod.__file__}")
    print(f"{'kernel':<20} {'generated s':>12} {'lambdify s':>12} {'speed-up':>9} "
          f"{'target':>7} {'max rel diff':>13} {'allclose':>9}")
    tot_g = tot_l = 0.0
    for name, key in rows:
        g, lm = med[key, "gen"], med[key, "lam"]
        tot_g += g
        tot_l += lm
        worst, ok = checks[key]
        print(f"{name:<20} {g:12.3e} {lm:12.3e} {lm / g:8.1f}x {'>= 3x':>7} {worst:13.1e} "
              f"{str(ok):>9}")
    overall = tot_l / tot_g
    all_ok = all(ok for _, ok in checks.values())
    print(f"{'overall':<20} {tot_g:12.3e} {tot_l:12.3e} {overall:8.1f}x {'>= 3x':>7} "
          f"{max(w for w, _ in checks.values()):13.1e} {str(all_ok):>9}")
    verdict = "meets" if overall >= TARGET else "MISSES"
    print(f"overall speed-up {overall:.1f}x: {verdict} the target (>= {TARGET:g}x); "
          f"outputs agree to rtol {RTOL:g}: {all_ok}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
