"""`--method adaptive --order 0|1`, linear networks (docs/theory.md §2b): the structured saddle of
numerics.linear_saddle along the ladder from the NNGP, with the adapted kernel, its alignment,
the hidden-weight observables and the effective rescaling (docs/theory.md §4)."""
from __future__ import annotations


from ..ladder import Solver, relative_change
from ..numerics import deep_modes, observe
from ..numerics.linear_saddle import LinearSaddle, mark_left_out
from ..numerics.rescale import effective_rescaling, shortfall_note
from ..numerics.truncation import EXACT_REMEDY, standard_scaling_note
from ..results import Result
from ..spectral import spectrum


class _Solver(Solver):
    retries = 8  # a failing step is retried through intermediate chi values

    def __init__(self, data, params):
        self.params = params
        self.spec = spectrum(data.X, data.y, data.X_test, params.g_w, "linear")
        self.saddle = LinearSaddle(self.spec, params.N, params.kappa, params.g_v, params.order)

    def solve(self, chi, warm):
        return self.saddle.solve(chi, warm)

    def warm(self, state):
        return state.a

    def change(self, state, prev):
        return relative_change(state.a, prev.a)

    def results(self, states):
        p, out, preds = self.params, [], []
        for st in states:
            pr = self.saddle.predictions(st)
            preds.append(pr)
            obs = self.saddle.observables(st, pr["B"], pr["E"], p.g_w, p.D)
            obs.pop("direction_r")
            obs.update(effective_rescaling(self.spec, pr["train_mean"], p.kappa, p.g_v))
            obs.update({"newton_iterations": st.iterations, "saddle_residual": st.residual})
            out.append(Result.point(p, st.chi, pr, {"observables": obs}))
            out[-1].warnings.extend(filter(None, [standard_scaling_note(p.order, st.chi, p.N, EXACT_REMEDY)]))
            shortfall_note(self.spec, out[-1], p.kappa, p.g_v)
        # against the modes of the exact integrand, by the effective rescaling: with a large target along a weak
        # direction of K and P > N (an outside audit) the saddle from the NNGP sat on a mode holding 2.5% of the
        # mass, test means 40 times off, converged
        verdicts = deep_modes.along(out, lambda r: deep_modes.judge(self.spec, [p.N], r.chi, p.kappa, p.g_v,
                                                                    r["observables"]["s_eff"]))
        for r, st, pr in zip(out, states, preds):  # the round-off the outputs carry, measured (linear_saddle)
            lost = self.saddle.roundoff(st, pr)
            note = (f"the outputs are lost to round-off in part ({lost:.2g} of the test variances, measured by "
                    "solving again in other units): targets far above the prior's output scale make their terms "
                    "cancel; " + observe.RESCALE)
            observe.mark_probed(r, lost, note)
        return deep_modes.mark(mark_left_out(self.saddle, out), verdicts, "kernel adaptation's saddle")


def solver(data, params, **_):
    if params.depth > 1:
        from .deep_adaptive import DeepNonlinearSolver, DeepSolver

        return (DeepSolver if params.activation == "linear" else DeepNonlinearSolver)(data, params)
    return _Solver(data, params)
