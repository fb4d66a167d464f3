"""msat.runtime.predict: the Python API behind `msat predict` (DESIGN.md contract).

Methods for linear networks (kernel-rescaling field, THEORY §2a):
  nngp   infinite width: s = 1;
  exact  the 1-D integral over s (runtime.exact);
  loop   the hbar-counted loop series to order L around the saddle of prior + fit, or with
         ``dressed`` around the saddle of the full action (runtime.loop).
A chi ladder is solved in the given order with warm starts (THEORY §5); the result is then a list.
"""
from __future__ import annotations

import math
import numbers
import time
from typing import Sequence

import numpy as np

from msat import generated

from . import exact as _exact
from . import loop as _loop
from . import observe
from .data import validate
from .errors import ConvergenceError, InputError
from .solve import find_saddle, ActionGradient
from .spectral import spectrum as _spectrum

METHODS = ("nngp", "exact", "loop", "adaptive", "sample")
ACTIVATIONS = ("linear", "erf", "relu")
#: methods built so far for each activation
AVAILABLE = {"linear": ("nngp", "exact", "loop", "adaptive", "sample"),
             "erf": ("nngp", "adaptive", "sample"), "relu": ("nngp", "adaptive", "sample")}
#: kernel-adaptation orders built so far per activation
ADAPTIVE_ORDERS = {"linear": (0, 1, 2), "erf": (0, 1), "relu": (0, 1)}
ESTIMATORS = ("auto", "cumulant", "mc")


def _positive(name, value, integer=False):
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    if integer and v != int(v):
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(v) if integer else v


def parse_chi(chi) -> list[float]:
    """One chi or a ladder: a number, a sequence, or a string '1,2,5,10'."""
    if isinstance(chi, str):
        parts = [p.strip() for p in chi.split(",")]
        if not parts or any(p == "" for p in parts):
            raise InputError(f"--chi must be a number or a comma-separated list, got {chi!r}")
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"--chi must be a number or a comma-separated list, got {chi!r}") from None
    elif isinstance(chi, (Sequence, np.ndarray)):
        vals = list(np.asarray(chi, dtype=object).ravel())
        if not vals:
            raise InputError("chi ladder is empty")
    else:
        vals = [chi]
    return [_positive("chi", v) for v in vals]


def check_params(N, kappa, g_v, g_w, activation, method, order):
    N = _positive("N", N, integer=True)
    kappa = _positive("kappa", kappa)
    g_v = _positive("g_v", g_v)
    g_w = _positive("g_w", g_w)
    if activation not in ACTIVATIONS:
        raise InputError(f"unknown activation {activation!r} (choose from {', '.join(ACTIVATIONS)})")
    if method is None:
        method = "loop" if activation == "linear" else "adaptive"
    if method not in METHODS:
        raise InputError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    if method not in AVAILABLE.get(activation, ()):
        raise InputError(
            f"method {method!r} is not available for activation {activation!r} in this version "
            f"(available: {', '.join(AVAILABLE.get(activation, ())) or 'none'})"
        )
    if isinstance(order, bool) or not isinstance(order, (numbers.Integral, np.integer)):
        if isinstance(order, float) and order.is_integer():
            order = int(order)
        else:
            raise InputError(f"order must be a non-negative integer, got {order!r}")
    if order < 0:
        raise InputError(f"order must be a non-negative integer, got {order}")
    if method == "adaptive" and order not in ADAPTIVE_ORDERS[activation]:
        raise InputError(
            f"--method adaptive supports --order {', '.join(map(str, ADAPTIVE_ORDERS[activation]))} "
            f"for activation {activation!r}, got {order}"
        )
    if method == "loop" and order > generated.MAX_ORDER:
        raise InputError(
            f"loop order {order} is not generated (available: 0..{generated.MAX_ORDER}); "
            f"run `msat derive --order {order}` to emit it"
        )
    return N, kappa, g_v, g_w, method, int(order)


def predict(X, y, X_test=None, *, N, chi, kappa, g_v=1.0, g_w=1.0, activation="linear",
            method=None, order=1, dressed=False, estimator="auto", seed=0, mc_samples=None,
            samples=1000, chains=4, progress=False, draws=None):
    """Posterior predictions of a Bayesian two-layer network (DESIGN.md contract).

    Returns one result dict, or a list of them (one per chi, ladder order) when ``chi`` is a
    ladder. Keys: method, order, params, train_mean, test_mean, test_var, s_mean, s_var,
    converged, seconds, warnings (+ method-specific extras). Raises InputError for bad input,
    ConvergenceError when a single-chi solve fails (a failing ladder point is recorded instead).

    ``estimator`` (non-linear adaptive only): "cumulant" (small Ct), "mc" (single-neuron MALA)
    or "auto" (cumulant while chi/N <= 0.1, else mc); ``seed`` seeds the Monte Carlo;
    ``mc_samples`` sets the number of Monte Carlo draws: prior draws (cumulant), or chains
    (mc_samples / 300, clipped to 16..512) for the single-neuron sampler.
    ``samples``, ``chains`` (method "sample"): HMC draws per chain and number of chains;
    ``draws`` collects the raw chains per chi (a list the caller passes in).
    """
    t0 = time.perf_counter()
    ladder = ("," in chi) if isinstance(chi, str) else np.ndim(chi) > 0
    chis = parse_chi(chi)
    N, kappa, g_v, g_w, method, order = check_params(N, kappa, g_v, g_w, activation, method, order)
    if estimator not in ESTIMATORS:
        raise InputError(f"unknown estimator {estimator!r} (choose from {', '.join(ESTIMATORS)})")
    data = validate(X, y, X_test)
    base = {"N": N, "kappa": kappa, "g_v": g_v, "g_w": g_w, "activation": activation,
            "dressed": bool(dressed), "P": int(data.X.shape[0]), "D": int(data.X.shape[1]),
            "P_test": int(data.X_test.shape[0])}
    if method == "sample":
        from .sample_predict import sample_results

        samples = _positive("samples", samples, integer=True)
        chains = _positive("chains", chains, integer=True)
        base.update(samples=samples, chains=chains, seed=int(seed))
        results = sample_results(data, base, chis, progress, draws)
    elif method == "adaptive":
        from .adaptive_predict import adaptive_results

        base.update(estimator=estimator, seed=int(seed))
        results = adaptive_results(data, base, chis, order, mc_samples)
    else:
        spec = _spectrum(data.X, data.y, data.X_test, g_w, activation)
        results = _solve(spec, base, chis, method, order, bool(dressed))
    elapsed = time.perf_counter() - t0
    for r in results:
        r["seconds"] = elapsed / len(chis)
        if r.get("converged") is False and "error" in r and not ladder:
            raise ConvergenceError(r["error"], r.get("diagnostics"))
    return results if ladder else results[0]


def _warnings(N, chi):
    if chi < 1 or chi > N:
        return [f"chi = {chi:g} lies outside [1, N] = [1, {N}] (allowed, but outside the regimes "
                "between standard and mean-field scaling)"]
    return []


def result(method, order, params, chi, values, extra=None):
    r = {
        "method": method,
        "order": order,
        "params": dict(params, chi=chi),
        "chi": chi,
        "train_mean": np.asarray(values["train_mean"]).tolist(),
        "test_mean": np.asarray(values["test_mean"]).tolist(),
        "test_var": np.asarray(values["test_var"]).tolist(),
        "s_mean": None if values.get("s_mean") is None else float(values["s_mean"]),
        "s_var": None if values.get("s_var") is None else float(values["s_var"]),
        "converged": True,
        "seconds": 0.0,
        "warnings": _warnings(params["N"], chi),
    }
    if extra:
        r.update(extra)
    return r


def failure(chi, err):
    diag = getattr(err, "diagnostics", {}) or {}
    return {"chi": chi, "converged": False, "error": str(err),
            "diagnostics": {k: float(v) if isinstance(v, (int, float)) else str(v)
                            for k, v in diag.items()}}


def _solve(spec, params, chis, method, order, dressed):
    N, kappa, g_v = params["N"], params["kappa"], params["g_v"]
    if method == "nngp":
        tab = observe.Tables(spec, np.ones(len(chis)), np.asarray(chis), kappa, g_v, order=0)
        train = observe.train_mean(spec, tab.train[:, 0, :])
        test = observe.test_mean(spec, tab.test[:, 0, :])
        var = observe.test_var(spec, tab.var[:, 0, :], tab.var_scalar[:, 0])
        return [
            result("nngp", None, params, c,
                    {"train_mean": train[j], "test_mean": test[j], "test_var": var[j],
                     "s_mean": 1.0, "s_var": 0.0})
            for j, c in enumerate(chis)
        ]
    if method == "exact":
        out, s_prev = [], 1.0
        for c in chis:
            try:
                m = _exact.moments(spec, N, c, kappa, g_v, s_init=s_prev)
            except ConvergenceError as err:
                out.append(failure(c, err))
                break
            s_prev = m["saddle"]
            out.append(result("exact", None, params, c, m,
                               {"quadrature_error": m["quadrature_error"], "saddle": m["saddle"]}))
        return out
    if method == "loop":
        saddles, failed = [], None
        s_prev = 1.0
        for i, c in enumerate(chis):
            try:
                sd = find_saddle(ActionGradient(spec, N, c, kappa, g_v, dressed), s_prev)
            except ConvergenceError as err:
                failed = failure(c, err)
                break
            saddles.append(sd)
            s_prev = sd.s
        out = []
        if saddles:
            s_star = np.array([sd.s for sd in saddles])
            vals = _loop.truncate(_loop.series(spec, N, s_star, chis[: len(saddles)], kappa, g_v,
                                               order, dressed, per_order=False))
            for j, c in enumerate(chis[: len(saddles)]):
                out.append(result("loop", order, params, c,
                                   {k: v[j] for k, v in vals.items()},
                                   {"dressed": dressed, "saddle": float(s_star[j])}))
        if failed:
            out.append(failed)
        return out
    raise InputError(f"method {method!r} is not available")
