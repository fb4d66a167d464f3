"""Ground truth: samples of a finite two-layer network from its posterior (docs/theory.md §1, §7).

HMC over all weights (W, a): the integrator here is plumbing; the log posterior, its gradient, the
prior scales and the observables of each draw are the generated model's
(msat.generated.densities, every activation). Preconditioned per weight group (one mass for W,
one for a; chi = N makes the readout prior stiff), several independent chains in parallel
processes.

Warm-up per chain: start from a prior draw with a small step, then windows of dual-averaging
step-size adaptation (target acceptance 0.8) and per-group mass adaptation (mass = 1/variance
of the group's coordinates over the window); the trajectory length is set from the step. During
sampling the step is jittered (+-20%) and chains that stop moving are reported (docs/theory.md §7).
Diagnostics (R-hat over chains, bulk/tail ESS, Monte Carlo standard errors) come from ArviZ.
"""
from __future__ import annotations

import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
from numba import njit
from threadpoolctl import threadpool_limits

from msat.generated import densities
from msat.generated.densities import network_log_posterior, network_record

from .. import spectral
from ..progress import Progress

TARGET_ACCEPT = 0.8
JITTER = 0.2


@dataclass
class ChainResult:
    train: np.ndarray  # (draws, P)
    test: np.ndarray  # (draws, P*)
    dirs: np.ndarray  # (draws, n_dirs)
    align: np.ndarray  # (draws,)
    accept: np.ndarray  # (draws,)
    wsum: np.ndarray  # (D, D) sum over draws of (1/N) W^T W
    ksum: np.ndarray  # (P, P) sum over draws of the empirical feature kernel (1/N) Phi^T Phi
    eps: float
    n_leap: int
    masses: tuple
    W: np.ndarray
    a: np.ndarray


@njit(cache=True)
def acceptance(H0, H1):
    """Metropolis acceptance probability of a move from energy H0 to H1 (0 when H1 is not finite)."""
    dH = H0 - H1
    if not math.isfinite(dH):
        return 0.0
    return 1.0 if dH >= 0.0 else math.exp(dH)


@njit(cache=True)
def leapfrog_chain(W, a, X, y, X_test, dirs, chi, kappa, g_v, g_w, act, m_W, m_a, eps, n_leap, n_iter, jitter,
                   rng, record, accumulate_w, out_train, out_test, out_dirs, out_align, accept, wsum, ksum,
                   warm_W):
    """n_iter HMC iterations over (W, a) from the state given (updated in place): per-group masses
    m_W, m_a, step eps jittered by +-jitter, n_leap leapfrog steps; momenta, jitter and accept draws
    from the NumPy Generator rng (its stream continues across calls). The log posterior and its
    gradient, and the observables recorded per draw (with ``record``), are the generated model's
    (msat.generated.densities); without ``record`` the per-iteration sums of squares of W and a go
    to warm_W (for the warm-up's mass adaptation)."""
    Nn, Dn = W.shape
    P = X.shape[0]
    gW = np.empty_like(W)
    ga = np.empty_like(a)
    H = np.empty((Nn, P))
    f = np.empty(P)
    W0 = np.empty_like(W)
    a0 = np.empty_like(a)
    gW0 = np.empty_like(W)
    ga0 = np.empty_like(a)
    pW = np.empty_like(W)
    pa = np.empty_like(a)
    Phi = np.empty((Nn, P))
    G = np.empty((Nn, P))
    XT = np.ascontiguousarray(X.T)
    Ck = np.empty((P, P)) if ksum.shape[0] == P else np.empty((0, 0))
    logp = network_log_posterior(W, a, X, y, chi, kappa, g_v, g_w, act, gW, ga, H, f, XT, Phi, G)
    sW = math.sqrt(m_W)
    sa = math.sqrt(m_a)
    for it in range(n_iter):
        e = eps * (1.0 + jitter * (2.0 * rng.random() - 1.0))
        kin = 0.0
        for i in range(Nn):
            pa[i] = sa * rng.standard_normal()
            kin += pa[i] * pa[i] / m_a
            a0[i] = a[i]
            ga0[i] = ga[i]
            for d in range(Dn):
                pW[i, d] = sW * rng.standard_normal()
                kin += pW[i, d] * pW[i, d] / m_W
                W0[i, d] = W[i, d]
                gW0[i, d] = gW[i, d]
        H0 = -logp + 0.5 * kin
        logp0 = logp
        lp = logp
        for step in range(n_leap):
            for i in range(Nn):
                pa[i] += 0.5 * e * ga[i]
                a[i] += e * pa[i] / m_a
                for d in range(Dn):
                    pW[i, d] += 0.5 * e * gW[i, d]
                    W[i, d] += e * pW[i, d] / m_W
            lp = network_log_posterior(W, a, X, y, chi, kappa, g_v, g_w, act, gW, ga, H, f, XT, Phi, G)
            for i in range(Nn):
                pa[i] += 0.5 * e * ga[i]
                for d in range(Dn):
                    pW[i, d] += 0.5 * e * gW[i, d]
        kin = 0.0
        for i in range(Nn):
            kin += pa[i] * pa[i] / m_a
            for d in range(Dn):
                kin += pW[i, d] * pW[i, d] / m_W
        acc_prob = acceptance(H0, -lp + 0.5 * kin)
        accept[it] = acc_prob
        if rng.random() < acc_prob:
            logp = lp
        else:
            logp = logp0
            for i in range(Nn):
                a[i] = a0[i]
                ga[i] = ga0[i]
                for d in range(Dn):
                    W[i, d] = W0[i, d]
                    gW[i, d] = gW0[i, d]
        if record:
            out_align[it] = network_record(W, a, X, X_test, y, dirs, act, accumulate_w, out_train[it],
                                           out_test[it], out_dirs[it], ksum, wsum, Phi, Ck)
        else:
            for i in range(Nn):
                for d in range(Dn):
                    warm_W[it, 0] += W[i, d] * W[i, d]
                warm_W[it, 1] += a[i] * a[i]
    return logp


def _run_chain(args):
    (X, y, X_test, dirs, N, chi, kappa, g_v, g_w, activation, draws, warmup, seed,
     accumulate_w) = args
    model = densities
    act = model.ACTIVATIONS.index(activation)
    rng = np.random.default_rng(seed)
    P, D = X.shape
    var_W, var_a = model.prior_variances(N, D, chi, g_v, g_w)
    W = rng.standard_normal((N, D)) * math.sqrt(var_W)
    a = rng.standard_normal(N) * math.sqrt(var_a)
    m_W, m_a = model.prior_precisions(N, D, chi, g_v, g_w)  # the initial preconditioner
    eps, n_leap = 0.05, 10  # small first steps (docs/theory.md §7: one chain in 64 stuck otherwise)
    # a linear network's mean feature kernel is X E[W^T W / N] X^T: with D < N < P it is read from wsum
    # (chains.summarise) and no P x P array is formed
    k = 0 if spectral.weights_hold_kernel(activation, P, D, N) else P
    accumulate_w = accumulate_w or k == 0
    dummy = dict(out_train=np.empty((1, P)), out_test=np.empty((1, X_test.shape[0])),
                 out_dirs=np.empty((1, dirs.shape[0])), out_align=np.empty(1), wsum=np.zeros((D, D)),
                 ksum=np.zeros((k, k)))

    def run(n_iter, record, eps, n_leap, masses, out=None):
        acc = np.empty(n_iter)
        warm = np.zeros((n_iter, 2))
        o = out or dummy
        leapfrog_chain(W, a, X, y, X_test, dirs, chi, kappa, g_v, g_w, act, masses[0], masses[1], eps, n_leap,
            n_iter, JITTER if record else 0.0, rng,  # one PCG64 stream per chain (numba draws from it)
            record, accumulate_w and record, o["out_train"], o["out_test"], o["out_dirs"],
            o["out_align"], acc, o["wsum"], o["ksum"], warm)
        return acc, warm

    def step(eps, n_leap, masses):
        acc, warm = run(1, False, eps, n_leap, masses)
        return acc[0], warm[0]

    eps, n_leap, masses = adapt(step, warmup, (N * D, N), (m_W, m_a), eps, n_leap)
    out = dict(out_train=np.empty((draws, P)), out_test=np.empty((draws, X_test.shape[0])),
               out_dirs=np.empty((draws, dirs.shape[0])), out_align=np.empty(draws),
               wsum=np.zeros((D, D)), ksum=np.zeros((k, k)))
    acc, _ = run(draws, True, eps, n_leap, masses, out)
    return ChainResult(out["out_train"], out["out_test"], out["out_dirs"], out["out_align"], acc,
                       out["wsum"], out["ksum"], eps, n_leap, masses, W, a)


def adapt(step, warmup, sizes, masses, eps, n_leap):
    """Warm-up (docs/theory.md §7): windows of dual-averaging step-size adaptation (target acceptance
    0.8) and per-group mass adaptation. ``step(eps, n_leap, masses)`` runs one HMC iteration and
    returns its acceptance probability and each group's sum of squares; ``sizes`` are the groups'
    numbers of coordinates. Returns (eps, n_leap, masses) for sampling."""
    windows = _windows(warmup)
    for k, n in enumerate(windows):
        log_eps_bar, h_bar, mu, t0, gamma, kappa_da = 0.0, 0.0, math.log(10 * eps), 10.0, 0.05, 0.75
        sq = []
        for t in range(1, n + 1):
            acc, sums = step(eps, n_leap, masses)
            h_bar = (1 - 1 / (t + t0)) * h_bar + (TARGET_ACCEPT - acc) / (t + t0)
            log_eps = mu - math.sqrt(t) / gamma * h_bar
            eta = t ** (-kappa_da)
            log_eps_bar = eta * log_eps + (1 - eta) * log_eps_bar
            eps = math.exp(log_eps)
            sq.append([float(x) for x in sums])
        eps = math.exp(log_eps_bar)
        if k < len(windows) - 1 and n >= 20:
            # mass = 1 / (per-coordinate second moment over the window's second half); the
            # posterior means of the weights vanish by the sign symmetry of the network
            half = len(sq) // 2
            var = [float(np.mean([q[g] for q in sq[half:]])) / sizes[g] for g in range(len(sizes))]
            if all(v > 0 for v in var):
                masses = tuple(1.0 / v for v in var)
                eps = 0.5 * eps  # the new metric changes the scale: restart the step search lower
        n_leap = int(min(max(math.ceil(1.5 / eps), 4), 200))
    return eps, n_leap, masses


def _windows(warmup: int):
    """Warm-up windows: a step-size window, growing mass windows, a final step-size window."""
    if warmup < 60:
        return [warmup]
    first, last = max(warmup // 10, 15), max(warmup // 5, 30)
    middle = warmup - first - last
    return [first, middle // 3, middle - middle // 3, last]


def run_chains(X, y, X_test, *, N, chi, kappa, g_v=1.0, g_w=1.0, activation="linear", samples=1000,
           chains=4, seed=0, warmup=None, directions=None, accumulate_w=True, progress=False,
           processes=None):
    """Run `chains` HMC chains (in parallel processes) and return them (list of ChainResult)."""
    X = np.ascontiguousarray(X, dtype=float)
    y = np.ascontiguousarray(y, dtype=float)
    X_test = np.ascontiguousarray(np.zeros((0, X.shape[1])) if X_test is None else X_test, dtype=float)
    D = X.shape[1]
    dirs = np.zeros((0, D)) if directions is None else np.ascontiguousarray(np.atleast_2d(directions), dtype=float)
    warmup = max(samples // 2, 200) if warmup is None else warmup
    seeds = np.random.SeedSequence(seed).generate_state(chains)
    jobs = [(X, y, X_test, dirs, int(N), float(chi), float(kappa), float(g_v), float(g_w),
             activation, int(samples), int(warmup), int(s), accumulate_w) for s in seeds]
    return run_jobs(_run_chain, jobs, processes, progress)


def _limit_blas(threads: int) -> None:
    """Pool initializer: at most `threads` BLAS threads in this worker process."""
    threadpool_limits(limits=threads, user_api="blas")


def run_jobs(fn, jobs, processes=None, progress=False):
    """fn over the chains' jobs, in parallel processes (in order of the jobs), with a progress bar."""
    processes = processes if processes is not None else min(len(jobs), os.cpu_count() or 1)
    if multiprocessing.current_process().daemon:
        processes = 1  # a daemonic process (a Dask worker) cannot start a pool: the chains run in turn
    results = [None] * len(jobs)
    bar = Progress(len(jobs), progress, "sampling chains")
    if processes <= 1:
        for i, job in enumerate(jobs):
            results[i] = fn(job)
            bar.step()
    else:
        # each chain's gradients are small GEMMs: BLAS threads beyond the worker's share of the
        # cores only contend (measured 5x slower with two chains on two cores)
        threads = max(1, (os.cpu_count() or 1) // processes)
        with ProcessPoolExecutor(max_workers=processes, initializer=_limit_blas,
                                 initargs=(threads,)) as pool:
            futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.step()
    bar.close()
    return results
