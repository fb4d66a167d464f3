"""Kernel adaptation for non-linear activations (docs/theory.md §2b, §6).

The saddle couples C = E_q[phi phi^T] under the adapted single-neuron law q(w) ∝ N(w; 0, g_w/D) exp(phi(Xw)^T Ct
phi(Xw)) with Ct = Ct(A, alpha) (generated conjugate field). Two estimators of the expectations under q, both with
generated moments (generated.adaptive_nonlinear, derived in derive.neuron):

  cumulant   (small Ct): C = K^phi plus the first-order tilt, the centred covariance of phi phi^T with
             phi^T Ct phi over one set of prior draws of w (common random numbers, so the fixed-point map is
             deterministic, solved by damped iteration); K^phi is exact.
  mc         (any Ct; the default): the saddle solved by Newton steps on fixed draws of q (numerics.reweighted_saddle:
             importance reweighting to nearby fields, a Gaussian control variate, Rao-Blackwellised test features),
             reached from a warm start along the chi ladder, or from a cold start through the damped stochastic
             iteration of numerics.stochastic_saddle (MALA chains with the generated single-neuron log density).

The Monte Carlo error is the spread of R independent replicate solves over sqrt(R) (R = `replicates`, eight by
default: the final draw sets, the cumulant estimator's prior blocks and the stochastic iteration's chain groups);
C* and c** come from the same draws (features of [X; X*]); normalisability limits are generated (densities);
numerics.modes checks that the saddle holds every separated mode of q, and where draws from near the prior miss
one, numerics.mixture_saddle solves on draws of each region of q weighed by annealed masses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from msat import generated
from msat.generated import densities

from ..errors import ConvergenceError
from ..spectral import nngp_kernels
from ..progress import status
from .continuation import RELU_EDGE, ContinuationStopped, cold_start_ladder, continue_saddle
from .replicates import REPLICATES
from .mixture_saddle import mixture_saddle
from .modes import MissedModeError, check_modes, missed
from .normalisability import NEAR_EDGE, normalisable
from .reweighted_saddle import reweighted_saddle
from .stochastic_saddle import iterate

ESTIMATORS = ("cumulant", "mc")
#: the largest factor in chi between the points of a cold start's anneal
ANNEAL = 1.5
#: chi/N up to which a cold start (from the NNGP) goes straight to the fixed draws
MILD_CHI_OVER_N = 0.1


@dataclass
class NonlinearState:
    chi: float
    C: np.ndarray
    Cs: np.ndarray
    css: np.ndarray
    A: np.ndarray
    alpha: np.ndarray
    Ct: np.ndarray
    iterations: int
    residual: float
    predictions: dict
    mc_error: dict
    warnings: list = field(default_factory=list)
    acceptance: float | None = None
    saddles: list = field(default_factory=list)  # (C, C*, c**, outputs) of each replicate solved alone
    sets: int = 0  # replicates whose spread gives mc_error (its z-scores: Student's t with sets - 1 dof)


class NonlinearSaddle:
    def __init__(self, X, y, X_test, N, kappa, g_v, g_w, activation, order, estimator="cumulant",
                 n_prior=20000, n_chains=64, n_steps=400, replicates=REPLICATES, seed=0, n_fixed=10000):
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}")
        self.X, self.y = np.ascontiguousarray(X, dtype=float), np.asarray(y, dtype=float)
        X_test = np.zeros((0, X.shape[1])) if X_test is None else X_test
        self.X_all = np.ascontiguousarray(np.vstack([X, X_test]), dtype=float)
        (self.P, self.D), self.N, self.kappa, self.g_v, self.g_w = X.shape, N, kappa, g_v, g_w
        self.activation, self.order, self.estimator = activation, order, estimator
        self.Kphi, self.kstar_phi, self.kss_phi = nngp_kernels(X, X_test, g_w, activation)
        self._model, self._act = densities, densities.ACTIVATIONS.index(activation)
        self.var_w, self.tilt_limit, self.mean_w2 = self._model.neuron_scales(self.D, g_w)
        lin = generated.linear_adaptation()
        self._field = getattr(lin, f"conjugate_field_o{order}")
        self._predictions = lin.predictions
        self._moments, self._tangents = generated.nonlinear_adaptation(), generated.deep_linear_adaptation()
        self._field_tangent = getattr(self._tangents, f"top_field_tangent_o{order}")
        self.n_chains, self.n_steps, self.replicates, self.seed = n_chains, n_steps, replicates, seed
        self.n_fixed = n_fixed  # draws per set of the final solve on fixed draws (0: stochastic iteration only)
        self._chi_warm = None  # chi of the last Monte Carlo solution (warm starts ramp from it)
        self._solved: list = []  # (chi, C) of the last two Monte Carlo solutions (the continuation's secant)
        self._mixed = False  # whether a solution needed the region-weighed draws (mixture_saddle)
        self.XtX_max = float(np.linalg.eigvalsh(self.X.T @ self.X)[-1]) if self.P else 0.0
        if estimator == "cumulant":
            rng = np.random.default_rng(seed)
            W0 = rng.standard_normal((n_prior, self.D)) * math.sqrt(self.var_w)
            # R replicate blocks of prior draws for the error estimate, plus their union
            self._blocks = np.array_split(self._phi(W0), replicates)

    def _phi(self, W, out=None):
        out = np.empty((W.shape[0], self.X_all.shape[0])) if out is None else out
        self._model.features(self.X_all, np.ascontiguousarray(W), self._act, out)
        return out

    # -- field step: Ct from C -------------------------------------------------------------
    def field(self, C, chi):
        """A = (g_v C + kappa)^-1 (Cholesky; fails unless positive definite), alpha, Ct."""
        M = self._moments.fit_operator(C, self.kappa, self.g_v)
        try:
            cf = cho_factor(M)
        except np.linalg.LinAlgError:
            raise ConvergenceError("adaptive: g_v C + kappa is not positive definite", {"chi": chi}) from None
        A = cho_solve(cf, np.eye(self.P))
        A = 0.5 * (A + A.T)
        alpha = A @ self.y
        Ct = self._field(A, alpha[:, None], float(self.N), float(chi), self.g_v)
        return A, alpha, Ct

    # -- expectations under q ----------------------------------------------------------------
    def _moments_cumulant(self, Ct, Phi):
        P = self.P
        C, Cs, css = self._moments.cumulant_moments(Phi[:, :P], Phi[:, P:], Ct, self.Kphi, self.kstar_phi,
                                                    self.kss_phi)
        return 0.5 * (C + C.T), Cs, css

    def normalisable(self, Ct):
        """(ok, tilt/prior): numerics.normalisability.normalisable."""
        return normalisable(self, Ct)

    def field_tangent(self, A, alpha, dC, chi):
        """dCt along dC at the field (A, alpha) of C (generated tangents of the fit and the field)."""
        dA, dalpha = self._tangents.fit_tangent(A, self.y[:, None], dC, self.g_v)
        return self._field_tangent(A, alpha[:, None], dA, dalpha, float(self.N), float(chi), self.g_v)

    def test_split(self):
        """(X*_par, s, Q): the test inputs' projections on the span of the training inputs (orthonormal
        basis Q, D x r), and the prior standard deviation of each test preactivation's part across it."""
        if not hasattr(self, "_split"):
            U, sv, Vt = np.linalg.svd(self.X, full_matrices=False)
            Q = Vt[sv > 1e-12 * max(sv[0] if sv.size else 0.0, 1e-300)].T
            Xt = self.X_all[self.P:]
            par = (Xt @ Q) @ Q.T
            s = np.sqrt(self.var_w * np.clip(np.sum(Xt * Xt, axis=1) - np.sum(par * par, axis=1), 0.0, None))
            self._split = (np.ascontiguousarray(par), np.ascontiguousarray(s), Q)
        return self._split

    def _outputs(self, C, Cs, css, chi):
        A, alpha, _ = self.field(C, chi)
        tr, te, va = self._predictions(C, Cs, css[:, None], A, alpha[:, None], self.g_v, float(chi))
        return {"train_mean": tr[:, 0], "test_mean": te[:, 0], "test_var": va[:, 0]}

    def _relu_check(self, Ct, chi, warnings):
        if self.activation != "relu" or self.estimator != "mc":
            return
        lead = "relu: q(w)'s normalisability rests on a search"
        if not any(w.startswith(lead) for w in warnings) and not self._model.relu_margin(  # once per point
                self.D, self.g_w, float(np.linalg.eigvalsh(Ct)[-1]), self.XtX_max) > 0:
            r = self.normalisable(Ct)[1]
            tail = densities.ray_tail_width(r) if r < 1 else math.inf
            near = (f"; so near 1 q's tail along that ray is {tail:.3g} prior widths long, which few draws reach,"
                    " and the Monte Carlo estimates can stray beyond their errors (against quadrature, D = 2: 11 "
                    "MCSE at 0.989 before radii were drawn exactly)" if r >= NEAR_EDGE else "")
            warnings.append(f"{lead} at chi = {chi:g}: the largest tilt/prior it finds on a ray is {r:.3g} (q exists "
                            "below 1; a lower bound), since the sufficient condition D/g_w > 2 lambda_max(Ct)_+ "
                            f"lambda_max(X^T X) fails (docs/theory.md §6){near}")

    # -- solves ------------------------------------------------------------------------------
    def _fixed_point(self, chi, C0, moments, tol, maxiter, warnings):
        C = self.Kphi.copy() if C0 is None else C0.copy()
        eta, prev = 1.0, np.inf
        for it in range(1, maxiter + 1):
            A, alpha, Ct = self.field(C, chi)
            self._relu_check(Ct, chi, warnings)
            C_new, Cs, css = moments(Ct)
            diff = np.linalg.norm(C_new - C) / max(np.linalg.norm(C), 1e-300)
            if diff < tol:
                A, alpha, Ct = self.field(C_new, chi)
                return C_new, Cs, css, A, alpha, Ct, it, diff
            if diff > prev:
                eta = max(eta * 0.5, 1e-3)
            prev = diff
            C = C + eta * (C_new - C)
        raise ConvergenceError("adaptive: fixed-point iteration did not converge",
                               {"chi": chi, "iterations": maxiter, "relative_change": diff})

    def _package(self, chi, C, Cs, css, A, alpha, Ct, it, res, replicas, warnings, acc=None, saddles=()):
        """The state at the saddle; `replicas` the outputs of the replicates solved alone (their spread is the
        Monte Carlo error), `saddles` their (C, C*, c**), kept with the outputs for order 2's error."""
        check_modes(self, C, Ct, chi)  # draws from near the prior can miss a separated mode of q
        train, test, var = self._predictions(C, Cs, css[:, None], A, alpha[:, None], self.g_v, float(chi))
        preds = {"train_mean": train[:, 0], "test_mean": test[:, 0], "test_var": var[:, 0]}
        err = {}
        if len(replicas) > 1:
            for k in preds:
                stack = np.array([r[k] for r in replicas])
                err[k] = stack.std(axis=0, ddof=1) / math.sqrt(len(replicas))
        kept = [s + (r,) for s, r in zip(saddles, replicas)] if len(saddles) == len(replicas) else []
        return NonlinearState(chi, C, Cs, css, A, alpha, Ct, it, res, preds, err, warnings, acc, kept, len(replicas))

    def solve(self, chi, C0=None, tol=1e-9, maxiter=500, mc_state=None):
        warnings: list = []
        if self.estimator == "cumulant":
            Phi_all = np.vstack(self._blocks)
            sol = self._fixed_point(chi, C0, lambda Ct: self._moments_cumulant(Ct, Phi_all), tol,
                                    maxiter, warnings)
            replicas, saddles = [], []
            for block in self._blocks:
                try:
                    Cb, Csb, cssb, Ab, ab, Ctb, _, _ = self._fixed_point(
                        chi, sol[0], lambda Ct, B=block: self._moments_cumulant(Ct, B), tol, maxiter, [])
                except ConvergenceError:
                    continue
                tr, te, va = self._predictions(Cb, Csb, cssb[:, None], Ab, ab[:, None], self.g_v, float(chi))
                replicas.append({"train_mean": tr[:, 0], "test_mean": te[:, 0], "test_var": va[:, 0]})
                saddles.append((Cb, Csb, cssb))
            # replicas use 1/R of the draws: their spread / sqrt(R) estimates the error of the union
            return self._package(chi, *sol, replicas, warnings, saddles=saddles)
        if C0 is None:
            # anneal (docs/theory.md §5): a cold start at large chi/N tilts q(w) so far that it is not
            # normalisable; climb from chi ~ 1 (or below) in steps of at most ANNEAL, warm-started
            steps = cold_start_ladder(self, chi, ANNEAL)
            for i, c in enumerate(steps):
                status(f"annealing from chi = {steps[0]:.3g}, step {i + 1} of {len(steps)} (chi = {c:.3g})")
                st = self._solve_mc(c, C0, [], mc_state)
                C0, mc_state = st.C, st.mc_state
            if steps:
                warnings.append(f"annealed from chi = {steps[0]:.4g} in {len(steps)} step{'s' * (len(steps) != 1)}")
        return self._solve_mc(chi, C0, warnings, mc_state)

    def _solve_mc(self, chi, C0, warnings, mc_state, polish=True):
        """_solve_draws; where q has a separated mode its draws miss (numerics.modes), and at the warm-started
        points after one, the saddle on draws of each region of q weighed by their masses (mixture_saddle)."""
        mixture = polish and self.n_fixed
        if mixture and C0 is not None and self._mixed:
            return self._fixed(chi, C0, warnings, mc_state, mixture=True)
        try:
            return self._solve_draws(chi, C0, warnings, mc_state, polish)
        except MissedModeError as err:
            if not mixture:
                raise
            warnings.append(f"adaptive: at chi = {chi:g} q(w) has a separated mode that draws from near the prior "
                            "miss: solved on draws of each region of q, weighed by annealed masses (docs/theory.md §6)")
            self._mixed = True
            return self._fixed(chi, err.C, warnings, mc_state, mixture=True)

    def _solve_draws(self, chi, C0, warnings, mc_state, polish=True):
        """R independent self-consistent MALA iterations bring C near the saddle (their mean, and their
        spread / sqrt R as its error); with `polish` (and n_fixed draws) the saddle is then solved on
        fixed draws (numerics.reweighted_saddle), whose replicas give the error instead."""
        edge = None  # a continuation in chi that stopped at the edge of q's normalisability
        if polish and self.n_fixed and (C0 is not None or chi / self.N <= MILD_CHI_OVER_N):
            # from a warm start, or from the NNGP where the tilt is mild, straight to the fixed draws,
            # which locate the saddle themselves ...
            try:
                return self._fixed(chi, self.Kphi if C0 is None else C0, warnings, mc_state)
            except ConvergenceError as err:
                missed(err)  # ... unless they cannot reach it from there: through intermediate chi, then ...
            if C0 is not None and self._chi_warm and self._chi_warm < chi:
                try:
                    return self._fixed(chi, continue_saddle(self, self._chi_warm, C0, chi), warnings, mc_state)
                except ConvergenceError as err:
                    missed(err)  # ... the stochastic iteration first
                    edge = err if isinstance(err, ContinuationStopped) else None
        try:
            results, accs = iterate(self, chi, C0, warnings, mc_state)
        except ConvergenceError as err:
            if edge is None:
                raise
            # where the continuation stopped, and why, says more than the fallback's failure (relu: where it ends)
            stop, why = edge.diagnostics.get("chi", float("nan")), str(edge).split(": ", 1)[-1]
            raise ConvergenceError(
                f"adaptive: no saddle found at chi = {chi:g}: the continuation from chi = {self._chi_warm:g} stopped "
                f"at chi = {stop:.4g}, where {why}; the stochastic iteration fails too ({err})"
                + (RELU_EDGE if self.activation == "relu" else ""),
                {**err.diagnostics, "continuation_stopped_at": edge.diagnostics.get("chi"),
                 "tilt_prior_there": edge.diagnostics.get("tilt_prior"), "chi": chi}) from None
        C = np.mean([r["C"] for r in results], axis=0)
        Cs = np.mean([r["Cs"] for r in results], axis=0)
        css = np.mean([r["css"] for r in results], axis=0)
        states = [r["state"] for r in results]
        if polish and self.n_fixed:
            return self._fixed(chi, C, warnings, states, float(np.mean(accs)))
        A, alpha, Ct = self.field(C, chi)
        st = self._package(chi, C, Cs, css, A, alpha, Ct, len(results), float("nan"), results, warnings,
                           float(np.mean(accs)), [(r["C"], r["Cs"], r["css"]) for r in results])
        st.mc_state, st.fixed = states, None
        self._chi_warm = chi
        return st

    def _fixed(self, chi, C, warnings, states, acceptance=None, mixture=False):
        """The saddle solved on fixed draws from C (numerics.reweighted_saddle, or mixture_saddle), packaged."""
        fixed = (mixture_saddle if mixture else reweighted_saddle)(self, chi, C, self.n_fixed,
                                                                   self.seed + int(1000 * chi) % 100003)
        results = fixed.outputs or [self._outputs(*rep, chi) for rep in fixed.replicas]
        A, alpha, Ct = self.field(fixed.C, chi)
        self._relu_check(Ct, chi, warnings)
        st = self._package(chi, fixed.C, fixed.Cs, fixed.css, A, alpha, Ct, fixed.stages, 0.0, results, warnings,
                           acceptance, [tuple(rep[:3]) for rep in fixed.replicas])
        st.mc_state, st.fixed = states, fixed
        self._chi_warm, self._solved = chi, (self._solved + [(chi, fixed.C)])[-2:]
        return st
