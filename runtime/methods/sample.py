"""`--method sample` / `msat sample` (docs/theory.md §7, §2d): finite networks sampled from the
posterior by HMC over all weights (numerics.hmc for one hidden layer, numerics.deep_hmc for several),
with ArviZ diagnostics and Monte Carlo errors."""
from __future__ import annotations

import numpy as np

from ..errors import ConvergenceError
from ..ladder import Point, Solver
from ..numerics import chains as _chains, deep_hmc, deep_modes, hmc, marginal_hmc
from ..numerics.chains import RHAT_FAIL, STUCK
from ..numerics.rescale import effective_rescaling
from ..params import FEW_UNITS
from ..results import Result
from ..spectral import spectrum


class _Solver(Solver):
    def __init__(self, data, params, progress=False, draws=None):
        self.data, self.params, self.progress, self.draws = data, params, progress, draws

    def solve(self, chi, warm):
        p, d = self.params, self.data
        common = dict(chi=chi, kappa=p.kappa, g_v=p.g_v, activation=p.activation, samples=p.samples,
                      chains=p.chains, seed=p.seed, progress=self.progress)
        if p.readout == "marginal":
            chains = marginal_hmc.run_chains(d.X, d.y, d.X_test, N=p.N, g_w=p.g_w, **common)
            summary = _chains.summarise_marginal(chains)
            keys = ("train", "train_cvar", "test", "test_cvar", "accept")
        else:
            if p.depth > 1:
                chains = deep_hmc.run_chains(d.X, d.y, d.X_test, widths=p.widths, g_ws=p.g_ws, **common)
            else:
                chains = hmc.run_chains(d.X, d.y, d.X_test, N=p.N, g_w=p.g_w, **common)
            summary = _chains.summarise(chains, d.X, d.y, p.kappa, p.g_w)
            keys = ("train", "test", "dirs", "align", "accept")
        summary["verdict"] = self._verdict(chi, summary)
        acc = np.array([c.accept.mean() for c in chains])
        stuck = bool(np.all(acc < STUCK))
        if self.draws is not None:  # a failed point's chains too (they show why), marked as not converged
            self.draws.append({"chi": chi, "converged": not stuck and not _apart(summary["rhat_max"])
                               and summary["verdict"].level not in ("lighter", "fail"),
                               **{k: np.stack([getattr(c, k) for c in chains]) for k in keys}})
        if stuck:  # the draws are the starting points, not the posterior: no result
            raise ConvergenceError(f"sample: every chain stopped moving (acceptance under {STUCK:.0%} in each, "
                                   f"highest {acc.max():.2%}): the posterior lies beyond the sampler's steps at "
                                   "these parameters", {"chi": chi, "acceptance_max": float(acc.max())})
        return Point(chi, value=summary, warnings=list(summary["warnings"]) + _unseen_modes(d, p, summary, len(chains)))

    def _verdict(self, chi, s):
        """Linear networks: where the chains sat against the modes of the kernel's scale (numerics.deep_modes.judge),
        by the sampled train mean's effective rescaling (docs/theory.md §4). The exact integrand (§2a, §2d) can have
        several modes; chains started from the prior stay in one (an outside audit: P = 41, N = chi = 10, a large
        target along a weak direction of K: R-hat 1.003, test means of 1e-4 against the posterior's 0.29; and chains
        in the heaviest mode where another held 27% of the mass, 0.005 against 12). The kernel's spectrum is
        factorised once for the ladder."""
        p, d = self.params, self.data
        if p.activation != "linear":
            return deep_modes.Verdict(None)
        if getattr(self, "spec", None) is None:
            self.spec = spectrum(d.X, d.y, d.X_test, p.g_ws, "linear")
        s_eff = effective_rescaling(self.spec, s["train_mean"], p.kappa, p.g_v)["s_eff"]
        return deep_modes.judge(self.spec, p.widths, chi, p.kappa, p.g_v, s_eff)

    def results(self, states):
        out = []
        for st in states:
            s = st.value
            extra = {
                "train_mean_mcse": np.asarray(s["train_mean_mcse"]).tolist(),
                "test_mean_mcse": np.asarray(s["test_mean_mcse"]).tolist(),
                "train_var": np.asarray(s["train_var"]).tolist(),
                "train_var_mcse": np.asarray(s["train_var_mcse"]).tolist(),
                "test_var_mcse": np.asarray(s["test_var_mcse"]).tolist(),
                "rhat_max": s["rhat_max"],
                "ess_min": s["ess_min"],
                "observables": s["observables"],
            }
            r = Result.point(self.params, st.chi, s, extra)
            if _apart(s["rhat_max"]):  # the MCSEs assume chains sampling one law: these do not
                hint = ("; --readout marginal, which integrates the readout out, mixes a slow readout but sees no "
                        "more modes" if self.params.readout == "sampled" and self.params.depth == 1 else "")
                r.unconverged(f"sample: the chains disagree (R-hat max {s['rhat_max']:.3f} > {RHAT_FAIL}): the values "
                              "and their MCSEs are not the posterior's yet; chains in separate modes of the posterior "
                              "(few units, small kappa) do not meet with more draws: increase --samples and --chains, "
                              f"compare --seed values{hint}",
                              {"rhat_max": s["rhat_max"], "ess_min": s["ess_min"]})
            else:
                deep_modes.mark([r], [s["verdict"]], "the chains, started from the prior,",
                                {"rhat_max": s["rhat_max"], "ess_min": s["ess_min"]})
            out.append(r)
        return out


def _unseen_modes(d, p, s, n_chains) -> list:
    """Warnings where the MCSEs and R-hat cannot see a mode no chain visited (docs/theory.md §7): a narrow
    non-linear layer, and outputs at nonzero inputs that never varied (MCSE exactly 0)."""
    out = []
    if p.activation != "linear" and min(p.widths) <= FEW_UNITS:
        out.append(f"sample: with {min(p.widths)} hidden unit(s) in a layer the posterior over functions can have "
                   f"separate modes that chains started from the prior do not cross, and R-hat over {n_chains} "
                   "chains sees only modes some chain starts in (an outside check: erf, N = chi = 2, all 4 chains in "
                   "a mode holding a tenth of the mass, R-hat 1.004, test means 800 MCSE off; 16 chains, the "
                   "default here, saw it); compare runs with other --seed values")
    frozen = 0 if p.activation == "linear" else sum(  # a linear output frozen at a nonzero input: y = 0, no mode
        int(np.sum((np.asarray(s[k + "_mean_mcse"]) == 0) & np.any(X != 0, axis=1)))
        for k, X in (("train", d.X), ("test", d.X_test)) if X is not None and len(X))
    if frozen:
        out.append(f"sample: {frozen} output(s) at nonzero inputs did not vary over any draw (MCSE 0; relu units "
                   "inactive there in every draw): an error of 0 says nothing of modes no chain visited")
    return out


def _apart(rhat_max) -> bool:
    return rhat_max is not None and rhat_max == rhat_max and rhat_max > RHAT_FAIL


def solver(data, params, progress=False, draws=None):
    return _Solver(data, params, progress, draws)
