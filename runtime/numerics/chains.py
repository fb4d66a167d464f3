"""Diagnostics and summaries of sampled chains (docs/theory.md §7): ArviZ R-hat, bulk/tail ESS and
Monte Carlo standard errors; posterior means and variances with their MCSE; the observables of the
sampled networks (feature-kernel alignment, hidden-weight second moment along the learned
direction, from msat.generated.observables)."""
from __future__ import annotations

import logging
import math
import warnings as _warnings

import numpy as np

from msat.generated import observables as gen_observables

from .observe import alignment_of, kernel_target_alignment

#: reported outputs must reach these (docs/theory.md §7)
RHAT_MAX = 1.01
ESS_MIN = 400
#: chains this far apart have not converged: the point keeps its values but reports converged false (exit 3)
RHAT_FAIL = 1.05


def diagnostics(chains_list, key):
    """ArviZ R-hat, bulk/tail ESS and MCSE of the mean for an output stacked over chains. An output constant
    within every chain has no R-hat (NaN); where those constants differ between chains it is infinite."""
    arr = np.stack([getattr(c, key) for c in chains_list])  # (chain, draw, ...)
    d = _arviz(arr)
    if arr.shape[0] > 1 and arr.ndim == 3 and arr.shape[2]:
        frozen = np.all(arr == arr[:, :1], axis=1)  # (chain, n): constant over the chain's draws
        apart = np.all(frozen, axis=0) & np.any(arr[:, 0] != arr[:1, 0], axis=0)
        d["rhat"] = np.where(apart, np.inf, d["rhat"])
    return d


def projection_mcse(chains_list, key, v):
    """ArviZ MCSE of the posterior mean of v . f (f: the output `key` of each draw): the error of a linear
    combination of the means with the correlations between their errors kept."""
    return float(_arviz(np.stack([getattr(c, key) for c in chains_list]) @ np.asarray(v, dtype=float))["mcse"][0])


def variance_mcse(means, cvars=None):
    """MCSE of a posterior variance estimated from draws (chain, draw, n): of the mean of
    (m - mbar)^2 (+ the conditional variance of a Rao-Blackwellised draw), by ArviZ's MCSE."""
    dev = (means - means.mean(axis=(0, 1))) ** 2
    return _arviz(dev if cvars is None else dev + cvars)["mcse"]


def _arviz(arr):
    """R-hat, bulk/tail ESS and MCSE of the mean of draws (chain, draw, ...)."""
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    if arr.ndim == 2:
        arr = arr[..., None]
    # one chain, or fewer chains than draws, makes ArviZ warn on stderr (its shape checks, through its own
    # logger); the sampler's warnings say what matters once, in msat's words
    getattr(az, "_log", logging.getLogger("arviz")).setLevel(logging.ERROR)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", UserWarning)
        ds = az.convert_to_dataset({"x": arr})
    # an output constant over every draw (a zero input row under relu) has no defined R-hat or ESS: NaN
    # (null in the JSON), without NumPy's 0/0 warnings from inside ArviZ on stderr
    with np.errstate(invalid="ignore", divide="ignore"), _warnings.catch_warnings():
        _warnings.simplefilter("ignore", RuntimeWarning)
        rhat = az.rhat(ds)["x"].values
        ess_bulk = az.ess(ds, method="bulk")["x"].values
        ess_tail = az.ess(ds, method="tail")["x"].values
        mcse = az.mcse(ds, method="mean")["x"].values
    return {"rhat": np.atleast_1d(rhat), "ess_bulk": np.atleast_1d(ess_bulk),
            "ess_tail": np.atleast_1d(ess_tail), "mcse": np.atleast_1d(mcse)}


def unit(u):
    """u / |u| (u itself when it vanishes)."""
    n = np.linalg.norm(u)
    return u / n if n > 0 else u


def learned_direction(X, y, train_mean, kappa):
    """The unit direction the hidden weights learn (docs/theory.md §4), from the train means."""
    return unit(gen_observables.learned_direction(X, y, np.asarray(train_mean), kappa))


#: a chain whose acceptance rate is under this has stopped moving (a warning; every chain so: no result)
STUCK = 0.05


def _checks(chains_list, d_train, d_test):
    """(R-hat max, ESS min, acceptance per chain, warnings) of the chains' outputs."""
    rhat = [d_train["rhat"]] + ([d_test["rhat"]] if d_test else [])
    ess = [d_train["ess_bulk"], d_train["ess_tail"]] + ([d_test["ess_bulk"], d_test["ess_tail"]] if d_test else [])
    rhat, ess = np.concatenate(rhat), np.concatenate(ess)
    # one chain has no R-hat (NaN): report NaN without numpy's all-NaN warning
    rhat_max = float("nan") if np.isnan(rhat).all() else float(np.nanmax(rhat))  # inf: chains frozen apart
    ess_min = float(np.nanmin(ess)) if np.isfinite(ess).any() else float("nan")
    acc = np.array([c.accept.mean() for c in chains_list])
    warnings = []
    if len(chains_list) < 2:
        warnings.append("sampler diagnostics: R-hat needs at least two chains (rhat_max undefined: null in the "
                        "JSON): use --chains 2 or more")
    constant = len(chains_list) >= 2 and rhat_max != rhat_max  # no output has an R-hat: none varies over the draws
    if constant:
        warnings.append("sampler diagnostics: no output varies over the draws (rhat_max undefined: null in the JSON; "
                        "the inputs or the targets may be all zero)")
    elif rhat_max > RHAT_MAX or ess_min < ESS_MIN:  # (an ESS of constant outputs calls for no more draws)
        rhat_part = f"R-hat max {rhat_max:.4f} (want <= {RHAT_MAX}), " if rhat_max == rhat_max else ""
        warnings.append(f"sampler diagnostics: {rhat_part}ESS min {ess_min:.0f} (want >= {ESS_MIN}): "
                        "increase --samples or --chains")
    stuck = [i for i, a in enumerate(acc) if a < STUCK]
    if stuck:
        warnings.append(f"chains {stuck} stopped moving (acceptance < {STUCK:.0%})")
    return rhat_max, ess_min, acc, warnings


def summarise_marginal(chains_list):
    """The Rao-Blackwellised summary of numerics.marginal_hmc chains: means are averages of the
    conditional means, variances E[Var[f | W]] + Var[E[f | W]], each with its MCSE."""
    def stack(key):
        return np.stack([getattr(c, key) for c in chains_list])  # (chain, draw, n)

    d_train = diagnostics(chains_list, "train")
    d_test = diagnostics(chains_list, "test") if chains_list[0].test.shape[1] else None
    rhat_max, ess_min, acc, warnings = _checks(chains_list, d_train, d_test)
    out = {"rhat_max": rhat_max, "ess_min": ess_min, "warnings": warnings,
           "observables": {"readout": "marginal", "acceptance": acc.tolist(),
                           "step_size": [c.eps for c in chains_list],
                           "leapfrog_steps": [c.n_leap for c in chains_list]}}
    for part, d in (("train", d_train), ("test", d_test)):
        m, v = stack(part), stack(part + "_cvar")
        n = m.shape[2]
        out[part + "_mean"] = m.mean(axis=(0, 1))
        out[part + "_var"] = v.mean(axis=(0, 1)) + (m.reshape(-1, n).var(axis=0, ddof=1) if m.size > n else 0.0)
        out[part + "_mean_mcse"] = d["mcse"] if d else np.zeros(0)
        out[part + "_var_mcse"] = variance_mcse(m, v) if n else np.zeros(0)
    return out


def _mean_kernel_alignment(chains_list, X, y, M, n_draws):
    """Alignment of the posterior mean feature kernel E[C]: from the summed kernels, or, where the
    chains kept none (a linear network, E[C] = X M X^T), from M = E[W^T W]/N on the D x D side:
    y^T E[C] y = (X^T y)^T M (X^T y) and ||E[C]||_F^2 = tr(G M G M) with G = X^T X."""
    if chains_list[0].ksum.size:
        return alignment_of(y, sum(c.ksum for c in chains_list) / n_draws)
    Xy, G = X.T @ y, X.T @ X
    GM = G @ M
    return kernel_target_alignment(Xy @ M @ Xy, y @ y, math.sqrt(max(float(np.sum(GM * GM.T)), 0.0)))


def summarise(chains_list, X, y, kappa, g_w):
    """Posterior means/variances, MCSEs, diagnostics and observables of sampled chains."""
    train = np.concatenate([c.train for c in chains_list])
    test = np.concatenate([c.test for c in chains_list])
    d_train = diagnostics(chains_list, "train")
    d_test = diagnostics(chains_list, "test") if test.shape[1] else None
    rhat_max, ess_min, acc, warnings = _checks(chains_list, d_train, d_test)
    n_draws = sum(c.train.shape[0] for c in chains_list)
    M = sum(c.wsum for c in chains_list) / n_draws  # (1/N) E[W^T W]
    train_mean = train.mean(axis=0)
    u = learned_direction(X, y, train_mean, kappa)
    # X^T y = 0 (y = 0, X = 0): the posterior learns no direction; u would be the train means' noise
    learns = bool(np.any(X.T @ np.asarray(y, dtype=float)))
    evals, evecs = np.linalg.eigh(M)
    align = np.concatenate([c.align for c in chains_list])
    mean_kernel = _mean_kernel_alignment(chains_list, X, y, M, n_draws)
    out = {
        "train_mean": train_mean,
        "test_mean": test.mean(axis=0),
        "test_var": test.var(axis=0, ddof=1) if test.shape[0] > 1 else np.zeros(test.shape[1]),
        "train_var": train.var(axis=0, ddof=1) if train.shape[0] > 1 else np.zeros(train.shape[1]),
        "train_mean_mcse": d_train["mcse"],
        "test_mean_mcse": d_test["mcse"] if d_test else np.zeros(0),
        "train_var_mcse": variance_mcse(np.stack([c.train for c in chains_list])),
        "test_var_mcse": variance_mcse(np.stack([c.test for c in chains_list])) if test.shape[1] else np.zeros(0),
        "rhat_max": rhat_max,
        "ess_min": ess_min,
        "observables": {
            "kernel_alignment": mean_kernel,
            "kernel_alignment_per_draw": float(align.mean()),
            "layers": _layers(chains_list, y, n_draws, mean_kernel),
            "weight_cov_direction": (float(gen_observables.weight_cov_excess(u @ M @ u, X.shape[1], g_w))
                                     if learns else float("nan")),
            "weight_cov_top_eigenvalue": float(evals[-1]),
            "weight_cov_baseline": float(gen_observables.weight_cov_baseline(X.shape[1], g_w)),
            "weight_cov_top_overlap": float(abs(evecs[:, -1] @ u)) if learns else float("nan"),
            "acceptance": acc.tolist(),
            "step_size": [c.eps for c in chains_list],
            "leapfrog_steps": [c.n_leap for c in chains_list],
        },
        "warnings": warnings,
        "weight_second_moment": M,
    }
    return out


def _layers(chains_list, y, n_draws, mean_kernel):
    """The kernel observables of each hidden layer, first to last (docs/theory.md §2d): the
    alignment of the posterior mean kernel E[C_l] and the mean per-draw alignment."""
    if getattr(chains_list[0], "layer_ksums", None) is None:  # one hidden layer
        return [{"kernel_alignment": mean_kernel,
                 "kernel_alignment_per_draw": float(np.concatenate([c.align for c in chains_list]).mean())}]
    else:
        L = chains_list[0].layer_ksums.shape[0]
        ksums = [sum(c.layer_ksums[l] for c in chains_list) for l in range(L)]
        aligns = [np.concatenate([c.layer_aligns[:, l] for c in chains_list]) for l in range(L)]
    return [{"kernel_alignment": alignment_of(y, k / n_draws), "kernel_alignment_per_draw": float(a.mean())}
            for k, a in zip(ksums, aligns)]
