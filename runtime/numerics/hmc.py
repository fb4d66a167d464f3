"""Ground truth: samples of a finite two-layer network from its posterior (THEORY §1, §7).

HMC over all weights (W, a) with the generated log posterior and gradient
(msat.generated.network_<phi>), preconditioned per weight group (one mass for W, one for a;
chi = N makes the readout prior stiff), several independent chains in parallel processes.

Warm-up per chain: start from a prior draw with a small step, then windows of dual-averaging
step-size adaptation (target acceptance 0.8) and per-group mass adaptation (mass = 1/variance
of the group's coordinates over the window); the trajectory length is set from the step. During
sampling the step is jittered (+-20%) and chains that stop moving are reported (THEORY §7).
Diagnostics (R-hat over chains, bulk/tail ESS, Monte Carlo standard errors) come from ArviZ.
"""
from __future__ import annotations

import math
import os
import warnings as _warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np

from msat import generated

from ..progress import Progress
from .observe import alignment_of

#: reported outputs must reach these (THEORY §7; issue 4)
RHAT_MAX = 1.01
ESS_MIN = 400
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


def _run_chain(args):
    (X, y, X_test, dirs, N, chi, kappa, g_v, g_w, activation, draws, warmup, seed,
     accumulate_w) = args
    hmc = getattr(generated.network(activation), f"hmc_{activation}")
    rng = np.random.default_rng(seed)
    P, D = X.shape
    W = rng.standard_normal((N, D)) * math.sqrt(g_w / D)
    a = rng.standard_normal(N) * math.sqrt(g_v / (chi * N))
    m_W, m_a = D / g_w, chi * N / g_v  # prior precisions: the initial preconditioner
    eps, n_leap = 0.05, 10  # small first steps (THEORY §7: one chain in 64 stuck otherwise)
    dummy = dict(out_train=np.empty((1, P)), out_test=np.empty((1, X_test.shape[0])),
                 out_dirs=np.empty((1, dirs.shape[0])), out_align=np.empty(1), wsum=np.zeros((D, D)),
                 ksum=np.zeros((P, P)))

    def run(n_iter, record, eps, n_leap, out=None):
        acc = np.empty(n_iter)
        warm = np.zeros((n_iter, 2))
        o = out or dummy
        hmc(W, a, X, y, X_test, dirs, chi, kappa, g_v, g_w, m_W, m_a, eps, n_leap, n_iter,
            JITTER if record else 0.0, rng,  # one PCG64 stream per chain (numba draws from it)
            record, accumulate_w and record, o["out_train"], o["out_test"], o["out_dirs"],
            o["out_align"], acc, o["wsum"], o["ksum"], warm)
        return acc, warm

    # warm-up: windows of step-size (dual averaging) and per-group mass adaptation
    windows = _windows(warmup)
    for k, n in enumerate(windows):
        log_eps_bar, h_bar, mu, t0, gamma, kappa_da = 0.0, 0.0, math.log(10 * eps), 10.0, 0.05, 0.75
        sq_W, sq_a = [], []
        for t in range(1, n + 1):
            acc, warm = run(1, False, eps, n_leap)
            h_bar = (1 - 1 / (t + t0)) * h_bar + (TARGET_ACCEPT - acc[0]) / (t + t0)
            log_eps = mu - math.sqrt(t) / gamma * h_bar
            eta = t ** (-kappa_da)
            log_eps_bar = eta * log_eps + (1 - eta) * log_eps_bar
            eps = math.exp(log_eps)
            sq_W.append(warm[0, 0])
            sq_a.append(warm[0, 1])
        eps = math.exp(log_eps_bar)
        if k < len(windows) - 1 and n >= 20:
            # mass = 1 / (per-coordinate second moment over the window's second half); the
            # posterior means of W and a vanish by the sign symmetry of the network
            half = len(sq_W) // 2
            var_W = float(np.mean(sq_W[half:])) / (N * D)
            var_a = float(np.mean(sq_a[half:])) / N
            if var_W > 0 and var_a > 0:
                m_W, m_a = 1.0 / var_W, 1.0 / var_a
                eps = 0.5 * eps  # the new metric changes the scale: restart the step search lower
        n_leap = int(min(max(math.ceil(1.5 / eps), 4), 200))
    out = dict(out_train=np.empty((draws, P)), out_test=np.empty((draws, X_test.shape[0])),
               out_dirs=np.empty((draws, dirs.shape[0])), out_align=np.empty(draws),
               wsum=np.zeros((D, D)), ksum=np.zeros((P, P)))
    acc, _ = run(draws, True, eps, n_leap, out)
    return ChainResult(out["out_train"], out["out_test"], out["out_dirs"], out["out_align"], acc,
                       out["wsum"], out["ksum"], eps, n_leap, (m_W, m_a), W, a)


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
    processes = processes if processes is not None else min(chains, os.cpu_count() or 1)
    results = [None] * chains
    bar = Progress(chains, progress, "sampling chains")
    if processes <= 1:
        for i, job in enumerate(jobs):
            results[i] = _run_chain(job)
            bar.step()
    else:
        with ProcessPoolExecutor(max_workers=processes) as pool:
            futures = {pool.submit(_run_chain, job): i for i, job in enumerate(jobs)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.step()
    bar.close()
    return results


def diagnostics(chains_list, key):
    """ArviZ R-hat, bulk/tail ESS and MCSE of the mean for an output stacked over chains."""
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    arr = np.stack([getattr(c, key) for c in chains_list])  # (chain, draw, ...)
    if arr.ndim == 2:
        arr = arr[..., None]
    ds = az.convert_to_dataset({"x": arr})
    rhat = az.rhat(ds)["x"].values
    ess_bulk = az.ess(ds, method="bulk")["x"].values
    ess_tail = az.ess(ds, method="tail")["x"].values
    mcse = az.mcse(ds, method="mean")["x"].values
    return {"rhat": np.atleast_1d(rhat), "ess_bulk": np.atleast_1d(ess_bulk),
            "ess_tail": np.atleast_1d(ess_tail), "mcse": np.atleast_1d(mcse)}


def summarise(chains_list, y, g_w, D, X):
    """Posterior means/variances, MCSEs, diagnostics and observables of sampled chains."""
    train = np.concatenate([c.train for c in chains_list])
    test = np.concatenate([c.test for c in chains_list])
    d_train = diagnostics(chains_list, "train")
    d_test = diagnostics(chains_list, "test") if test.shape[1] else None
    rhat = [d_train["rhat"]] + ([d_test["rhat"]] if d_test else [])
    ess = [d_train["ess_bulk"], d_train["ess_tail"]] + ([d_test["ess_bulk"], d_test["ess_tail"]] if d_test else [])
    rhat_max = float(np.nanmax(np.concatenate(rhat)))
    ess_min = float(np.nanmin(np.concatenate(ess)))
    n_draws = sum(c.train.shape[0] for c in chains_list)
    M = sum(c.wsum for c in chains_list) / n_draws  # (1/N) E[W^T W]
    train_mean = train.mean(axis=0)
    u = X.T @ (y - train_mean)  # learned direction: X^T alpha with alpha = (y - <f>)/kappa
    u = u / np.linalg.norm(u) if np.linalg.norm(u) > 0 else u
    evals, evecs = np.linalg.eigh(M)
    align = np.concatenate([c.align for c in chains_list])
    Kbar = sum(c.ksum for c in chains_list) / n_draws  # posterior mean feature kernel E[C]
    acc = np.array([c.accept.mean() for c in chains_list])
    warnings = []
    if rhat_max > RHAT_MAX or ess_min < ESS_MIN:
        warnings.append(f"sampler diagnostics: R-hat max {rhat_max:.3f} (want <= {RHAT_MAX}), "
                        f"ESS min {ess_min:.0f} (want >= {ESS_MIN}): increase --samples or --chains")
    stuck = [i for i, a in enumerate(acc) if a < 0.05]
    if stuck:
        warnings.append(f"chains {stuck} stopped moving (acceptance < 5%)")
    out = {
        "train_mean": train_mean,
        "test_mean": test.mean(axis=0),
        "test_var": test.var(axis=0, ddof=1) if test.shape[0] > 1 else np.zeros(test.shape[1]),
        "train_var": train.var(axis=0, ddof=1) if train.shape[0] > 1 else np.zeros(train.shape[1]),
        "train_mean_mcse": d_train["mcse"],
        "test_mean_mcse": d_test["mcse"] if d_test else np.zeros(0),
        "rhat_max": rhat_max,
        "ess_min": ess_min,
        "observables": {
            "kernel_alignment": alignment_of(y, Kbar),
            "kernel_alignment_per_draw": float(align.mean()),
            "weight_cov_direction": float(u @ M @ u - g_w / D),
            "weight_cov_top_eigenvalue": float(evals[-1]),
            "weight_cov_baseline": g_w / D,
            "weight_cov_top_overlap": float(abs(evecs[:, -1] @ u)),
            "acceptance": acc.tolist(),
            "step_size": [c.eps for c in chains_list],
            "leapfrog_steps": [c.n_leap for c in chains_list],
        },
        "warnings": warnings,
        "weight_second_moment": M,
    }
    return out
