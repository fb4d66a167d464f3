"""Convergence studies of the main job against the exact integral (docs/theory.md §3, §9):
loop-order errors against N at chi = 1 and chi = N with their slopes, kernel adaptation order 2,
statement 2 (P comparable to N) and statement 3 (the adapted mean as a rescaling). At depth L > 1 the
same studies run on L hidden layers of width N through ``predict`` (docs/theory.md §2d)."""
from __future__ import annotations

import math

import numpy as np

from .. import data as _data
from .. import spectral
from ..errors import ConvergenceError
from ..methods import exact
from ..predict import predict


def _rms(v):
    v = np.asarray(v, dtype=float)
    return float(np.sqrt(np.mean(v * v))) if v.size else float("nan")


#: errors at or under this are round-off: left out of a slope
ROUND_OFF = 1e-13


def max_deviation(r, ref, keys=("train_mean", "test_mean")) -> float:
    """The largest |output - ref's| over the outputs `keys` of two results (NaN where either has none)."""
    if not (r and ref):
        return float("nan")
    return max(float(np.max(np.abs(np.asarray(r[k]) - np.asarray(ref[k])), initial=0.0)) for k in keys)


def loglog_slope(Ns, errors, last=None):
    """Slope of log error against log N over the errors above round-off (the `last` of them, if given); None
    with fewer than three such points (the series at machine precision there)."""
    pts = [(math.log(n), math.log(v)) for n, v in zip(Ns, errors) if v > ROUND_OFF]
    pts = pts[-last:] if last else pts
    return float(np.polyfit(*np.array(pts).T, 1)[0]) if len(pts) >= 3 else None


def _loop_errors(spec, N, chi, kappa, g_v, orders, dressed, ex):
    from ..methods.loop import series, truncate
    from ..numerics.saddle import ActionGradient, find_saddle

    sd = find_saddle(ActionGradient(spec, N, chi, kappa, g_v, dressed))
    errs = []
    for L in orders:
        v = truncate(series(spec, N, [sd.s], [chi], kappa, g_v, L, dressed))
        errs.append(max(float(np.max(np.abs(v[k][0] - ex[k]))) for k in ("train_mean", "test_mean", "test_var")))
    return errs


def _loop_errors_deep(ds, N, chi, cfg, depth, orders, dressed, ex):
    """Each order's largest error against exact; NaN (no point in the figure or the slopes) where the series has no
    answer at this N (a negative variance at depth 3, P/N = 0.4: the full run's first N), instead of ending the run."""
    errs = []
    for L in orders:
        try:
            v = predict(ds.X, ds.y, ds.X_test, N=N, depth=depth, chi=chi, kappa=cfg.kappa, g_v=cfg.g_v,
                        g_w=cfg.g_w, method="loop", order=L, dressed=dressed)
        except ConvergenceError:
            errs.append(float("nan"))
            continue
        errs.append(max_deviation(v, ex, ("train_mean", "test_mean", "test_var")))
    return errs


def _exact(ds, spec, N, chi, cfg, depth):
    if depth == 1:
        return exact.moments(spec, N, chi, cfg.kappa, cfg.g_v)
    return predict(ds.X, ds.y, ds.X_test, N=N, depth=depth, chi=chi, kappa=cfg.kappa, g_v=cfg.g_v, g_w=cfg.g_w,
                   method="exact")


def orders(cfg, bar, depth=1):
    ds = _data.builtin("ising", P=cfg.orders_P, D=cfg.orders_D, P_test=10, seed=cfg.seed)
    spec = spectral.spectrum(ds.X, ds.y, ds.X_test, cfg.g_w)
    errors = {}
    for regime in ("chi=1", "chi=N"):
        errors[regime] = {"bare": [[] for _ in range(4)], "dressed": [[] for _ in range(4)]}
        for N in cfg.orders_Ns:
            bar.step(f"loop orders, {regime}, N = {N}")
            chi = 1.0 if regime == "chi=1" else float(N)
            ex = _exact(ds, spec, N, chi, cfg, depth)
            for variant in ("bare", "dressed"):
                dressed = variant == "dressed"
                errs = (_loop_errors(spec, N, chi, cfg.kappa, cfg.g_v, range(4), dressed, ex) if depth == 1 else
                        _loop_errors_deep(ds, N, chi, cfg, depth, range(4), dressed, ex))
                for L, e in enumerate(errs):
                    errors[regime][variant][L].append(e)
    # kernel adaptation order 2 (the kernel field's own loop, docs/theory.md §2c), means only
    kf = {"chi=1": [], "chi=N": []} if depth == 1 else {}
    for regime in kf:
        for N in cfg.orders_Ns:
            chi = 1.0 if regime == "chi=1" else float(N)
            ex = exact.moments(spec, N, chi, cfg.kappa, cfg.g_v)
            r = predict(ds.X, ds.y, ds.X_test, N=N, chi=chi, kappa=cfg.kappa, g_v=cfg.g_v, g_w=cfg.g_w, method="adaptive", order=2)
            kf[regime].append(max_deviation(r, ex))
    slopes = {}
    for regime, d in errors.items():
        for variant, per_L in d.items():
            for L, e in enumerate(per_L):
                slopes[f"{regime} {variant} L={L}"] = loglog_slope(cfg.orders_Ns, e)
    for regime, e in kf.items():
        slopes[f"{regime} adaptive o2"] = float(np.polyfit(np.log(cfg.orders_Ns), np.log(e), 1)[0])
    return {"P": cfg.orders_P, "Ns": cfg.orders_Ns, "errors": errors, "slopes": slopes, "adaptive_o2": kf}


def statement2(cfg, bar, depth=1):
    from ..methods.loop import series, truncate
    from ..numerics.saddle import ActionGradient, find_saddle

    out = {"Ns": cfg.statement2_Ns, "tree_chi1": [], "dressed1_chi1": [], "tree_chiN": []}
    for N in cfg.statement2_Ns:
        bar.step(f"statement 2, N = {N}")
        P = N // 2
        ds = _data.builtin("ising", P=P, D=P, P_test=4, seed=cfg.seed)
        spec = spectral.spectrum(ds.X, ds.y, ds.X_test, cfg.g_w)
        for chi, keys in ((1.0, (("tree_chi1", 0, False), ("dressed1_chi1", 1, True))), (float(N), (("tree_chiN", 0, False),))):
            ex = _exact(ds, spec, N, chi, cfg, depth)
            for key, L, dressed in keys:
                if depth == 1:
                    sd = find_saddle(ActionGradient(spec, N, chi, cfg.kappa, cfg.g_v, dressed))
                    m = truncate(series(spec, N, [sd.s], [chi], cfg.kappa, cfg.g_v, L, dressed))["train_mean"][0]
                else:
                    m = predict(ds.X, ds.y, ds.X_test, N=N, depth=depth, chi=chi, kappa=cfg.kappa, g_v=cfg.g_v,
                                g_w=cfg.g_w, method="loop", order=L, dressed=dressed)["train_mean"]
                out[key].append(_rms(np.asarray(m) - np.asarray(ex["train_mean"])))
    return out


def statement3(cfg, bar, raw, depth=1):
    from ..numerics.rescale import effective_rescaling

    ds = _data.builtin("ising", P=cfg.orders_P, D=cfg.orders_D, P_test=4, seed=cfg.seed)
    spec = spectral.spectrum(ds.X, ds.y, ds.X_test, cfg.g_w)
    out = {"P": cfg.orders_P, "D": cfg.orders_D, "depth": depth, "Ns": cfg.statement3_Ns, "order0_residual": [],
           "order0_relative_residual": [], "order1_relative_residual": [], "s_eff": [],
           # the run's own ladder where it is the linear network's (an erf or relu run's is not)
           "ladder_order0_residual": [r["observables"]["s_eff_residual"] for r in raw["adaptive_o0"]] if raw else []}
    for N in cfg.statement3_Ns:
        bar.step(f"statement 3, N = {N}")
        chis = list(np.geomspace(1.0, N, 6))
        common = dict(N=N, depth=depth, chi=chis, kappa=cfg.kappa, g_v=cfg.g_v, g_w=cfg.g_w, method="adaptive")
        r0 = predict(ds.X, ds.y, ds.X_test, order=0, **common)[-1]
        r1 = predict(ds.X, ds.y, ds.X_test, order=1, **common)[-1]
        out["order0_residual"].append(r0["observables"]["s_eff_residual"])
        out["order0_relative_residual"].append(r0["observables"]["s_eff_relative_residual"])
        e1 = effective_rescaling(spec, r1["train_mean"], cfg.kappa, cfg.g_v)
        out["order1_relative_residual"].append(e1["s_eff_relative_residual"])
        out["s_eff"].append(e1["s_eff"])
    return out
