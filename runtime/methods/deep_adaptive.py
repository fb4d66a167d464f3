"""`--method adaptive --order 0|1` for deep linear networks (docs/theory.md §2d): the chain of
numerics.deep_chain along the ladder from the NNGP, with each layer's adapted kernel (``layers``),
the last layer's kernel observables, the first layer's hidden-weight observables and the effective
total rescaling u (docs/theory.md §4)."""
from __future__ import annotations

import numpy as np

from ..ladder import Solver, relative_change
from ..numerics import observe
from ..numerics.deep_chain import DeepChain
from ..numerics.linear_saddle import kernel_observables, weight_observables
from ..numerics.rescale import effective_rescaling
from ..results import Result
from ..spectral import spectrum


class DeepSolver(Solver):
    retries = 8  # a failing step is retried through intermediate chi values

    def __init__(self, data, params):
        self.params = params
        self.spec = spectrum(data.X, data.y, data.X_test, params.g_ws[0], "linear")
        self.chain = DeepChain(self.spec, params.widths, params.g_ws, params.kappa, params.g_v, params.order)

    def solve(self, chi, warm):
        return self.chain.solve(chi, warm)

    def warm(self, state):
        return state.T

    def change(self, state, prev):
        return relative_change(np.concatenate([t.ravel() for t in state.T]),
                               np.concatenate([t.ravel() for t in prev.T]))

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
            obs.update({"iterations": st.iterations, "saddle_residual": st.residual})
            out.append(Result.point(p, st.chi, pr, {"observables": obs}))
        return out
