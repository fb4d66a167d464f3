"""`--method adaptive --order 0|1` for deep networks (docs/theory.md §2d): for linear networks the chain
of numerics.deep_chain, for erf and relu that of numerics.deep_nonlinear, along the ladder from the
NNGP, with each layer's adapted kernel (``layers``), the last layer's kernel observables, the first
layer's hidden-weight observables (linear) and the effective rescaling (docs/theory.md §4)."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ConvergenceError
from ..ladder import Solver, annealed, relative_change
from ..numerics import deep_modes, observe
from ..numerics.deep_chain import DeepChain
from ..numerics.deep_nonlinear import DeepNonlinearChain
from ..numerics.replicates import DEEP_MIN_SET, REPLICATES
from ..numerics.linear_saddle import kernel_observables, mark_left_out, weight_observables
from ..numerics.rescale import effective_rescaling, shortfall_note
from ..numerics.truncation import EXACT_REMEDY, standard_scaling_note
from ..results import Result
from .nonlinear import nngp_means, order_warnings, resolution_warnings
from ..spectral import spectrum


#: Monte Carlo draws (all replicates together) of the non-linear chain, unless --mc-samples says otherwise;
#: split into REPLICATES independent replicates, as one hidden layer's (their spread gives the Monte Carlo error)
DRAWS = 32000


class DeepSolver(Solver):
    retries = 8  # a failing step is retried through intermediate chi values
    #: a cold start's zero fields fail down to chi ~ 1 / (targets over the prior's output scale)^2 (x 300 failed at
    #: 1/256); the chain is r x r, so failed tries cost milliseconds: down to chi = 4^-10 (x 1000 reached)
    cold_tries = 10

    def __init__(self, data, params):
        self.params = params
        self.spec = spectrum(data.X, data.y, data.X_test, params.g_ws[0], "linear")
        self.chain = DeepChain(self.spec, params.widths, params.g_ws, params.kappa, params.g_v, params.order)

    def solve(self, chi, warm):
        try:
            return self.chain.solve(chi, warm)
        except ConvergenceError:
            if warm is not None:
                raise
            # a first point far from chi = 1 (chi = N at depth 2 and 3), or targets above the prior's output scale
            # (y x 10 at chi = 1 to 2 failed, its saddle there), start the chain too far from its saddle: reached
            # from smaller chi, where the fields are small
            return annealed(self.chain.solve, chi, lambda st: st.T, self.retries, tried=chi, tries=self.cold_tries)

    def warm(self, state):
        return state.T

    def change(self, state, prev):
        # the adapted kernels, not their conjugates T: T grows with chi, so doubling chi moved it by ~90% on a
        # smooth branch and every step of a ladder was flagged
        return relative_change(np.concatenate([c.ravel() for c in state.C]),
                               np.concatenate([c.ravel() for c in prev.C]))

    def observables(self, st) -> dict:
        p, ch = self.params, self.chain
        layers = [kernel_observables(self.spec, ch.y_r, C, np.linalg.eigvalsh(C)) for C in st.C]
        out = {"kernel_alignment": layers[-1]["kernel_alignment"],
               "kernel_alignment_nngp": observe.alignment_of_spectrum(self.spec),
               "kernel_top_eigenvalues": layers[-1]["kernel_top_eigenvalues"], "layers": layers}
        E = ch.linear.precision_shift(st.T[0])  # the first layer's weights see Ct_1
        out.update(weight_observables(ch.linear, ch.lam, E, st.a, p.g_ws[0], p.D, st.chi))
        out.pop("direction_r")
        return out

    def results(self, states):
        p, out = self.params, []
        for st in states:
            pr = self.chain.predictions(st)
            obs = self.observables(st)
            obs.update(effective_rescaling(self.spec, pr["train_mean"], p.kappa, p.g_v))
            obs.update({"iterations": st.iterations, "saddle_residual": st.residual, "solver": st.solver})
            out.append(Result.point(p, st.chi, pr, {"observables": obs}))
            out[-1].warnings.extend(filter(None, [standard_scaling_note(p.order, st.chi, p.N, EXACT_REMEDY)]))
            shortfall_note(self.spec, out[-1], p.kappa, p.g_v)  # the layers' kernel fluctuations, large targets
        return self.judged(out)

    def judged(self, results):
        """Each point against the modes of the exact integrand over the layers' scales (numerics.deep_modes.judge),
        by its effective rescaling. Far from the NNGP's scales (an outside check: inputs of 0.01, targets of 100)
        the chain, started from the NNGP, converged on a saddle 240,000 nats lighter and gave test means of 4e-4
        against the posterior's 12 to 45 with no warning; a start that reaches the heavier saddle is not built."""
        p, lam = self.params, self.spec.lam
        for g in p.g_ws[1:]:  # the top layer's NNGP kernel (prod_l g_l K, the same eigenvectors)
            lam = self.chain.preactivations(lam, g)
        top = dataclasses.replace(self.spec, lam=lam)
        verdicts = [deep_modes.judge(top, p.widths, r.chi, p.kappa, p.g_v, r["observables"]["s_eff"])
                    for r in results]  # s_eff rescales K and the top kernel alike
        return deep_modes.mark(mark_left_out(self.chain, results), verdicts, "the deep chain's saddle")


class DeepNonlinearSolver(Solver):
    """erf and relu networks: the chain of numerics.deep_nonlinear (importance sums over fixed draws,
    Monte Carlo error from independent replicates)."""

    retries = 8

    def __init__(self, data, params):
        self.data, self.params = data, params
        self.spec_phi = spectrum(data.X, data.y, data.X_test, params.g_ws, params.activation)
        draws = params.mc_samples or DRAWS
        self.chain = DeepNonlinearChain(data.X, data.y, data.X_test, params.widths, params.g_ws, params.kappa,
                                        params.g_v, params.activation, params.order,
                                        draws=max(int(draws) // REPLICATES, DEEP_MIN_SET), replicates=REPLICATES,
                                        seed=params.seed)

    def solve(self, chi, warm):
        if warm is not None:
            return self.chain.solve(chi, warm)
        if chi <= 2.0:
            try:
                return self.chain.solve(chi)
            except ConvergenceError:  # infeasible zero fields (relu, small kappa): from below chi = 1
                return annealed(self.chain.solve, chi, lambda st: st.warm, self.retries, tried=chi)
        # a cold start far from chi = 1 tilts the layers past the fixed draws: anneal (docs/theory.md §5)
        return annealed(self.chain.solve, chi, lambda st: st.warm, self.retries)

    def warm(self, state):
        return state.warm

    def change(self, state, prev):
        return relative_change(np.concatenate([c[0].ravel() for c in state.C]),
                               np.concatenate([c[0].ravel() for c in prev.C]))

    def results(self, states):
        p, y, out = self.params, self.data.y, []
        yy = float(y @ y)
        for st in states:
            layers = [{"kernel_alignment": observe.kernel_target_alignment(y @ C @ y, yy, np.linalg.norm(C)),
                       "kernel_top_eigenvalues": np.linalg.eigvalsh(C)[::-1][:5].tolist()} for C, _, _ in st.C]
            obs = {"kernel_alignment": layers[-1]["kernel_alignment"],
                   "kernel_alignment_nngp": observe.alignment_of_spectrum(self.spec_phi),
                   "kernel_top_eigenvalues": layers[-1]["kernel_top_eigenvalues"], "layers": layers,
                   "estimator": "importance", "effective_sample_fraction": st.ess, "iterations": st.iterations,
                   "mc_error_sets": self.chain.replicates}
            obs.update(effective_rescaling(self.spec_phi, st.predictions["train_mean"], p.kappa, p.g_v))
            err = {k: np.asarray(v).tolist() for k, v in st.mc_error.items()}
            extra = {"train_mean_mcse": err["train_mean"], "test_mean_mcse": err["test_mean"],
                     "observables": obs, "mc_error": err}
            res = Result.point(p, st.chi, st.predictions, extra)
            reference = nngp_means(self.spec_phi, st.chi, p.kappa, p.g_v)
            res.warnings.extend(resolution_warnings(None, st.predictions, err, reference))
            res.warnings.extend(order_warnings(p, st.chi, loop=False))
            out.append(res)
        return out
