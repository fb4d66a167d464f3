"""`--method sample` / `msat sample`: sampled finite networks as DESIGN.md result objects."""
from __future__ import annotations

import numpy as np

from . import sampler
from .predict import result


def sample_results(data, params, chis, progress=False, draws=None):
    out = []
    for chi in chis:
        chains = sampler.sample(data.X, data.y, data.X_test, N=params["N"], chi=chi,
                                kappa=params["kappa"], g_v=params["g_v"], g_w=params["g_w"],
                                activation=params["activation"], samples=params["samples"],
                                chains=params["chains"], seed=params["seed"], progress=progress)
        s = sampler.summarise(chains, data.y, params["g_w"], data.X.shape[1], data.X)
        extra = {
            "train_mean_mcse": np.asarray(s["train_mean_mcse"]).tolist(),
            "test_mean_mcse": np.asarray(s["test_mean_mcse"]).tolist(),
            "train_var": np.asarray(s["train_var"]).tolist(),
            "rhat_max": s["rhat_max"],
            "ess_min": s["ess_min"],
            "observables": s["observables"],
        }
        r = result("sample", None, params, chi, s, extra)
        r["warnings"] += s["warnings"]
        out.append(r)
        if draws is not None:
            draws.append({"chi": chi, **{k: np.stack([getattr(c, k) for c in chains])
                                         for k in ("train", "test", "dirs", "align", "accept")}})
    return out
