"""`--method adaptive --order 2`, linear networks (docs/theory.md §2c): the saddle of the exact
Wishart-field action (the P x P kernel field when P < D, else the D x D weight field), warm-started
from the order-1 kernel-adaptation saddle and along the ladder, plus its one-loop correction."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from msat import generated

from ..errors import ConvergenceError, InputError
from ..ladder import relative_change
from ..numerics.linear_saddle import LinearSaddle, mark_left_out
from ..numerics.observe import alignment_of_spectrum, kernel_target_alignment
from ..numerics.wishart import WishartField
from ..results import Result
from ..spectral import linear_kernels
from . import SpectralSolver


@dataclass
class _State:
    chi: float
    first: object  # the order-1 saddle (numerics.linear_saddle.State)
    field: WishartField
    F: np.ndarray
    iterations: int
    warnings: list = field(default_factory=list)


class _Solver(SpectralSolver):
    retries = 8

    def __init__(self, data, params, spec=None):
        super().__init__(data, params, spec)  # one hidden layer, linear: the spectrum of K = (g_w/D) X X^T
        self.first = LinearSaddle(self.spec, params.N, params.kappa, params.g_v, 1)
        # the kernel field needs K invertible; a rank-deficient K (repeated or dependent inputs)
        # takes the weight field, which needs N > n + 1 for its n x n field
        self.full_rank = bool(self.first.mask.all())
        self.X, self.X_test, self.g_w = data.X, data.X_test, params.g_w
        self.s2 = np.zeros(data.X_test.shape[0])  # test features' variance beyond the field's directions
        if not (params.P < params.D and self.full_rank) and 0 < self.first.r < params.D:
            V = data.X.T @ self.spec.columns(self.first.mask) / np.sqrt(self.first.lam * params.D / params.g_w)
            self.X, self.X_test, self.g_w, self.s2 = _row_space(data.X, data.X_test, params.g_w, V, self.spec,
                                                                 self.first.mask)
        n = self.X.shape[1]
        if not self.full_rank and params.N <= n + 1:
            raise InputError(f"--order 2: K has rank {self.first.r} < P = {params.P}, so the {n} x {n} weight field "
                             f"is used (docs/theory.md §2c), which needs N > {n + 1}; got N = {params.N}")

    def solve(self, chi, warm):
        p, d = self.params, self.data
        a_prev, F_prev = warm if warm is not None else (None, None)
        st1 = self.first.solve(chi, a_prev)
        pr1 = self.first.predictions(st1)  # B: the order-1 kernel, a start for the field
        fld = WishartField.for_data(self.X, d.y, p.N, chi, p.kappa, p.g_v, self.g_w, self.full_rank)
        if F_prev is None:
            F_prev = fld.start_from_factor(self.spec.columns(self.first.mask), pr1["B"])
        try:
            F, iters = fld.saddle(F_prev)
        except np.linalg.LinAlgError as err:
            raise ConvergenceError(f"{fld.name} field: {err}", {"chi": chi}) from None
        return _State(chi, st1, fld, F, iters, list(st1.warnings))

    def warm(self, state):
        return state.first.a, state.F

    def change(self, state, prev):
        return relative_change(state.first.a, prev.first.a)

    def results(self, states):
        p, d, out = self.params, self.data, []
        kstar = kss = None
        for st in states:
            if st.field.Phi is None and kstar is None:  # only the kernel field (P < D) needs k* and k**
                _, kstar, kss = linear_kernels(d.X, d.X_test, p.g_w)
            fld = st.field
            loop = fld.loop(st.F)
            beta1, beta0 = fld.one_loop(st.F, loop)
            m1, t1 = fld.outputs(beta1, self.X_test, kstar)
            m0, _ = fld.outputs(beta0, self.X_test, kstar)
            cov, s2 = fld.test_covectors(self.X_test, kstar, kss)
            tv1, _ = fld.test_variance(loop, cov, s2 + self.s2, p.N)
            values = {"train_mean": m1, "test_mean": t1, "test_var": tv1}
            evals, yCy = fld.kernel_spectrum(st.F)
            obs = {
                "kernel_alignment": kernel_target_alignment(yCy, d.y @ d.y, np.linalg.norm(evals)),
                "kernel_alignment_nngp": alignment_of_spectrum(self.spec),
                "kernel_top_eigenvalues": evals[:5].tolist(),
                "loop_correction": float(np.max(np.abs(m1 - m0))),
                "loop_correction_mcse": 0.0,  # the Wishart field's loop is closed-form: no Monte Carlo in it
                "field": f"{fld.name} ({fld.n} x {fld.n})",
                "saddle_newton_iterations": st.iterations,
                "test_var_source": "the Wishart field's one loop: the variance given the field plus the test mean's "
                                   "variance over the field",
            }
            obs["layers"] = [{k: obs[k] for k in ("kernel_alignment", "kernel_top_eigenvalues")}]
            out.append(Result.point(p, st.chi, values, {"observables": obs}))
        return mark_left_out(self.first, out)


def _row_space(X, X_test, g_w, V, spec, mask):
    """(X V, X_test V, g_w r / D, s2): the inputs in an orthonormal basis V (D x r) of the rows of X, rank
    r < D (from K's eigenvectors U: V = X^T U / its singular values). The data tilt a neuron's weights only
    along V, so the weight field's law projected on V is the r x r Wishart law with the same scale g_w / D,
    and the r x r field is the same integral: a smaller
    field, whose loop's (n/N)^2 error is that of n = r, not D (docs/theory.md §2c). A test point's part
    outside V is a feature independent of the field, Gaussian with the prior's variance s2 = k** - k*^T K^+ k*
    (the kernel field's test_feature_variance, from the spectrum's k*^T U and k** on K's held modes)."""
    D, r = V.shape
    kt = spec.Kt[:, mask].T  # (r, P*): k*^T U
    s2 = generated.wishart_field().test_feature_variance(kt, kt / spec.lam[mask][:, None], spec.kss[:, None])[:, 0]
    return X @ V, X_test @ V, g_w * r / D, np.maximum(s2, 0.0)  # round-off can dip below 0


def solver(data, params, spec=None, **_):
    return _Solver(data, params, spec)
