"""Ground truth at depth: samples of a network with L hidden layers from its posterior
(docs/theory.md §2d, §7).

HMC over the flat vector of all weights theta = [W_1, ..., W_L, v] (msat.generated.densities:
deep_offsets, deep_log_posterior, deep_record), preconditioned per weight group (one mass per
layer and one for the readout), with the two-layer sampler's warm-up (numerics.hmc.adapt), step
jitter and process pool. The chains it returns have the two-layer sampler's fields, so
numerics.chains summarises both; the observables refer to the last hidden layer's kernel and the
first layer's weights, and ``layers`` holds each hidden layer's kernel sums.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from msat.generated import densities
from msat.generated.densities import deep_log_posterior, deep_offsets, deep_record

from .hmc import JITTER, acceptance, adapt, run_jobs


@dataclass
class DeepChain:
    train: np.ndarray  # (draws, P)
    test: np.ndarray  # (draws, P*)
    dirs: np.ndarray  # (draws, n_dirs), first layer
    align: np.ndarray  # (draws,), last layer's kernel
    accept: np.ndarray  # (draws,)
    wsum: np.ndarray  # (D, D) sum over draws of (1/N_1) W_1^T W_1
    ksum: np.ndarray  # (P, P) sum over draws of the last layer's feature kernel
    eps: float
    n_leap: int
    masses: tuple
    theta: np.ndarray
    layer_ksums: np.ndarray  # (L, P, P) each hidden layer's feature-kernel sum over draws
    layer_aligns: np.ndarray  # (draws, L) each layer's kernel-target alignment per draw


@njit(cache=True)
def leapfrog(theta, widths, group, XT, y, XT_test, dirs, chi, kappa, g_v, g_ws, act, masses, eps, n_leap,
             n_iter, jitter, rng, record, out_train, out_test, out_dirs, ksums, wsum, aligns, accept, warm):
    """n_iter HMC iterations over theta (updated in place), coordinate j with mass masses[group[j]];
    momenta, jitter and accept draws from rng. With ``record`` each draw's observables go to the
    out arrays (docs/theory.md §4); without it each group's sum of squares goes to warm."""
    n = theta.shape[0]
    P = XT.shape[1]
    S = 0
    for l in range(widths.shape[0]):
        S += widths[l] * max(P, XT_test.shape[1])
    H, A, B = np.empty(S), np.empty(S), np.empty(S)
    grad, grad0, theta0, p = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    fP = np.empty(P)
    logp = deep_log_posterior(theta, widths, XT, y, chi, kappa, g_v, g_ws, act, grad, H, A, B, fP)
    root = np.sqrt(masses)
    for it in range(n_iter):
        e = eps * (1.0 + jitter * (2.0 * rng.random() - 1.0))
        kin = 0.0
        for j in range(n):
            p[j] = root[group[j]] * rng.standard_normal()
            kin += p[j] * p[j] / masses[group[j]]
            theta0[j] = theta[j]
            grad0[j] = grad[j]
        H0 = -logp + 0.5 * kin
        logp0 = logp
        lp = logp
        for step in range(n_leap):
            for j in range(n):
                p[j] += 0.5 * e * grad[j]
                theta[j] += e * p[j] / masses[group[j]]
            lp = deep_log_posterior(theta, widths, XT, y, chi, kappa, g_v, g_ws, act, grad, H, A, B, fP)
            for j in range(n):
                p[j] += 0.5 * e * grad[j]
        kin = 0.0
        for j in range(n):
            kin += p[j] * p[j] / masses[group[j]]
        acc_prob = acceptance(H0, -lp + 0.5 * kin)
        accept[it] = acc_prob
        if rng.random() < acc_prob:
            logp = lp
        else:
            logp = logp0
            for j in range(n):
                theta[j] = theta0[j]
                grad[j] = grad0[j]
        if record:
            deep_record(theta, widths, XT, XT_test, y, dirs, act, H, A, out_train[it], out_test[it],
                        out_dirs[it], ksums, wsum, aligns[it])
        else:
            for j in range(n):
                warm[it, group[j]] += theta[j] * theta[j]
    return logp


def _run_chain(args):
    (X, y, X_test, dirs, widths, chi, kappa, g_v, g_ws, activation, draws, warmup, seed) = args
    act = densities.ACTIVATIONS.index(activation)
    rng = np.random.default_rng(seed)
    P, D = X.shape
    L = len(widths)
    offs = deep_offsets(widths, D)
    sizes = np.diff(offs)
    group = np.repeat(np.arange(L + 1), sizes)
    # prior variances: each layer is a two-layer hidden layer with its fan-in; the readout has N_L
    fans = [D] + list(widths[:-1])
    var = [densities.prior_variances(widths[-1], fans[l], chi, g_v, g_ws[l])[0] for l in range(L)]
    var.append(densities.prior_variances(widths[-1], D, chi, g_v, g_ws[0])[1])
    theta = rng.standard_normal(offs[-1]) * np.sqrt(np.repeat(var, sizes))
    masses = tuple(1.0 / v for v in var)  # the initial preconditioner: the prior precisions
    eps, n_leap = 0.05, 10  # small first steps (docs/theory.md §7)
    XT, XT_test = np.ascontiguousarray(X.T), np.ascontiguousarray(X_test.T)

    def outputs(n):
        return dict(out_train=np.empty((n, P)), out_test=np.empty((n, X_test.shape[0])),
                    out_dirs=np.empty((n, dirs.shape[0])), ksums=np.zeros((L, P, P)), wsum=np.zeros((D, D)),
                    aligns=np.empty((n, L)))

    dummy = outputs(1)

    def run(n_iter, record, eps, n_leap, masses, out=None):
        acc = np.empty(n_iter)
        warm = np.zeros((n_iter, L + 1))
        o = out or dummy
        leapfrog(theta, widths, group, XT, y, XT_test, dirs, chi, kappa, g_v, g_ws, act,
                 np.asarray(masses, dtype=float), eps, n_leap, n_iter, JITTER if record else 0.0, rng, record,
                 o["out_train"], o["out_test"], o["out_dirs"], o["ksums"], o["wsum"], o["aligns"], acc, warm)
        return acc, warm

    def step(eps, n_leap, masses):
        acc, warm = run(1, False, eps, n_leap, masses)
        return acc[0], warm[0]

    eps, n_leap, masses = adapt(step, warmup, tuple(int(s) for s in sizes), masses, eps, n_leap)
    out = outputs(draws)
    acc, _ = run(draws, True, eps, n_leap, masses, out)
    return DeepChain(out["out_train"], out["out_test"], out["out_dirs"], out["aligns"][:, -1].copy(), acc,
                     out["wsum"], out["ksums"][-1].copy(), eps, n_leap, masses, theta, out["ksums"], out["aligns"])


def run_chains(X, y, X_test, *, widths, chi, kappa, g_v=1.0, g_ws=None, activation="linear", samples=1000,
               chains=4, seed=0, warmup=None, directions=None, progress=False, processes=None):
    """Run `chains` HMC chains over all weights of a deep network (list of DeepChain)."""
    X = np.ascontiguousarray(X, dtype=float)
    y = np.ascontiguousarray(y, dtype=float)
    X_test = np.ascontiguousarray(np.zeros((0, X.shape[1])) if X_test is None else X_test, dtype=float)
    D = X.shape[1]
    widths = np.asarray(widths, dtype=np.int64)
    g_ws = np.ones(len(widths)) if g_ws is None else np.asarray(g_ws, dtype=float)
    dirs = np.zeros((0, D)) if directions is None else np.ascontiguousarray(np.atleast_2d(directions), dtype=float)
    warmup = max(samples // 2, 200) if warmup is None else warmup
    seeds = np.random.SeedSequence(seed).generate_state(chains)
    jobs = [(X, y, X_test, dirs, widths, float(chi), float(kappa), float(g_v), g_ws, activation, int(samples),
             int(warmup), int(s)) for s in seeds]
    return run_jobs(_run_chain, jobs, processes, progress)
