"""Kernel-adaptation saddle of a linear network, structured solver (docs/theory.md §2b, §5).

The saddle equations (derive.adaptive) reduce, in the eigenbasis of K restricted to its range
(r = rank K modes, lam > 0), to one r-vector unknown a = U_r^T alpha: the field
R(a) = Lambda^-1 - sigma a a^T, the adapted kernel B = h^-1(R), A_r = f(B), and the fixed point
a = A_r U_r^T y. Every one of those forms is generated (generated.adaptive_linear: saddle_field,
adapted_spectrum_o*, saddle_residual, newton_matrix, nngp_start, precision_shift, test_forms,
weight_forms; derived in derive.adaptation_basis). This module is the plumbing: the eigendecomposition
of R, the divided differences of f over its eigenvalues (the Daleckii-Krein derivative of a
matrix function), the Newton solve with backtracking, and the eigendecomposition of the
hidden-weight precision. Each Newton step costs one r x r eigendecomposition and one r x r solve;
K is never inverted and nothing of size P x P is iterated on. A step is accepted only if R stays
positive definite (equivalently S = E_q[w w^T] positive definite; g_v C + kappa then is too).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from msat import generated
from msat.generated import observables as gen_observables

from . import observe
from ..errors import ConvergenceError
from ..spectral import Spectrum

#: eigenvalues of K below this fraction of the largest are its null space (C vanishes there)
RANK_RTOL = 1e-10
#: a relative residual the line search cannot lower further is round-off, and the saddle is taken, up to this: on
#: inputs of condition number 1e3..1e6 the residual stalls at 1e-13..1e-9 (an outside audit: every point failed)
ROUNDOFF = 1e-8
#: the share of the NNGP's train or test means on the modes left out above which a point is not converged, and a
#: warning
LEFT_OUT_FAIL, LEFT_OUT_WARN = 1e-3, 1e-8


@dataclass
class State:
    """Converged saddle at one chi (quantities in the eigenbasis of K restricted to its range)."""

    chi: float
    a: np.ndarray  # U_r^T alpha
    Q: np.ndarray  # eigenvectors of R
    rho: np.ndarray  # eigenvalues of R
    b: np.ndarray  # eigenvalues of B = U_r^T C U_r (same eigenvectors)
    f: np.ndarray  # eigenvalues of A_r
    iterations: int
    residual: float
    warnings: list = field(default_factory=list)


class LinearSaddle:
    """Structured Newton solver for the order-0/1 kernel-adaptation saddle of a linear network."""

    def __init__(self, spec: Spectrum, N: int, kappa: float, g_v: float, order: int):
        if order not in (0, 1):
            raise ValueError("linear kernel-adaptation orders are 0 and 1")
        self.spec, self.N, self.kappa, self.g_v, self.order = spec, N, kappa, g_v, order
        lam = spec.lam
        self.mask = lam > RANK_RTOL * max(lam.max(initial=0.0), 1e-300)
        self.lam = lam[self.mask]
        self.inv_lam = 1.0 / self.lam
        self.y_r = spec.yt[self.mask]
        self.r = int(self.mask.sum())
        self._gen = mod = generated.linear_adaptation()
        self._spectrum = getattr(mod, f"adapted_spectrum_o{order}")
        self._sigma = getattr(mod, f"rank_one_coefficient_o{order}")
        self._field = getattr(mod, f"conjugate_field_o{order}")

    # -- the map a -> f(R(a)) yt and its Jacobian ------------------------------------------
    def _evaluate(self, a, sigma):
        rho, Q = np.linalg.eigh(self._gen.saddle_field(self.inv_lam, a, sigma))
        if rho.size and not rho[0] > 0:
            return None
        b = np.empty_like(rho)
        f = np.empty_like(rho)
        df = np.empty_like(rho)
        self._spectrum(rho, float(self.N), self.kappa, self.g_v, b, f, df)
        return rho, Q, b, f, df

    @staticmethod
    def _divided_differences(rho, f, df):
        """Phi1_ij = (f_i - f_j)/(rho_i - rho_j), df on (near-)coincident eigenvalues."""
        dr = rho[:, None] - rho[None, :]
        close = np.abs(dr) <= 1e-9 * np.maximum(np.abs(rho[:, None]), np.abs(rho[None, :]))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (f[:, None] - f[None, :]) / dr
        out[close] = 0.5 * (df[:, None] + df[None, :])[close]
        return out

    def initial(self):
        """NNGP start (docs/theory.md §5): a = U_r^T alpha with alpha = (g_v K + kappa)^-1 y (generated)."""
        return self._gen.nngp_start(self.lam, self.y_r, self.kappa, self.g_v)

    def _residual(self, a, ev):
        rho, Q, b, f, df = ev
        return Q.T @ a, Q.T @ self.y_r, self._gen.saddle_residual(Q.T @ a, f, Q.T @ self.y_r)

    def solve(self, chi: float, a0=None, tol: float = 1e-13, maxiter: int = 60) -> State:
        """Newton with backtracking from a0 (default: the NNGP solution)."""
        sigma = float(self._sigma(float(self.N), float(chi), self.g_v))
        a = self.initial() if a0 is None else np.array(a0, dtype=float)
        ev = self._evaluate(a, sigma)
        for _ in range(60):  # shrink an infeasible start towards a = 0, where R = Lambda^-1 > 0
            if ev is not None:
                break
            a = 0.5 * a
            ev = self._evaluate(a, sigma)
        if ev is None:
            raise ConvergenceError("adaptive: no feasible start (R not positive definite)", {"chi": chi})
        scale = max(np.linalg.norm(self.y_r) / self.kappa, 1e-300)
        seen = []
        for it in range(1, maxiter + 1):
            rho, Q, b, f, df = ev
            ahat, yhat, Fhat = self._residual(a, ev)
            res = np.linalg.norm(Fhat)
            seen.append(res)
            if res <= tol * scale:
                return State(chi, a, Q, rho, b, f, it, res / scale)
            Phi = self._divided_differences(rho, f, df)
            step_hat = np.linalg.solve(self._gen.newton_matrix(Phi, ahat, yhat, sigma), -Fhat)
            step = Q @ step_hat
            t = 1.0
            for _ in range(30):
                trial = a + t * step
                ev_new = self._evaluate(trial, sigma)
                if ev_new is not None:
                    res2 = np.linalg.norm(self._residual(trial, ev_new)[2])
                    if res2 < (1 - 1e-4 * t) * res or res2 <= tol * scale:
                        break
                t *= 0.5
            else:
                if res <= ROUNDOFF * scale:
                    return State(chi, a, Q, rho, b, f, it, res / scale)
                raise ConvergenceError("adaptive: line search failed (no feasible descent)",
                                       {"chi": chi, "iterations": it, "residual": res / scale})
            a, ev = trial, ev_new
        # a residual that crawls at round-off (ten steps without halving; graded inputs) is the saddle too, but not
        # an iteration cut short while it still converges (a review: 2e-9 at 3 steps, test means 2e-4 off)
        if res <= ROUNDOFF * scale and len(seen) > 10 and seen[-11] < 2 * res:
            rho, Q, b, f, _ = ev
            return State(chi, a, Q, rho, b, f, maxiter, float(np.linalg.norm(self._residual(a, ev)[2])) / scale)
        raise ConvergenceError("adaptive: Newton did not converge",
                               {"chi": chi, "iterations": maxiter, "residual": res / scale})

    def roundoff(self, st: State, a: dict, probe: float = 3.0) -> float:
        """The round-off in the test variances (the train means where there are no test points) at the saddle st
        (its predictions a), measured: the same saddle solved again in the units y/probe (kappa and g_v over
        probe^2, a symmetry of the posterior; probe not a power of 2, so that every rounding differs), from st's a
        scaled accordingly, its outputs compared. Targets far above the prior's output scale make the variance's
        terms cancel (an outside audit: y x 1e8, 14% off; y x 1e15, 2e14 times off, positive, converged)."""
        spec = dataclasses.replace(self.spec, yt=self.spec.yt / probe)
        other = LinearSaddle(spec, self.N, self.kappa / probe**2, self.g_v / probe**2, self.order)
        try:
            st2 = other.solve(st.chi, st.a * probe)
        except ConvergenceError:
            return float("nan")  # no measure (the point stands as solved)
        b = other.predictions(st2)
        if spec.P_test:
            return observe.variance_shift(a["test_var"], b["test_var"] * probe**2)
        top = max(float(np.max(np.abs(a["train_mean"]), initial=0.0)), 1e-300)
        return float(np.max(np.abs(b["train_mean"] * probe - a["train_mean"]), initial=0.0)) / top

    # -- quantities at the saddle ----------------------------------------------------------
    def matrices(self, st: State):
        """B = U_r^T C U_r, A_r, and E = -2 U_r^T Ct U_r (from the emitted conjugate field)."""
        B = (st.Q * st.b) @ st.Q.T
        A = (st.Q * st.f) @ st.Q.T
        Ct = self._field(A, st.a[:, None], float(self.N), float(st.chi), self.g_v)
        return B, A, self._gen.precision_shift(Ct)

    def predictions(self, st: State) -> dict:
        spec = self.spec
        B, A, E = self.matrices(st)
        khat = spec.Kt[:, self.mask].T  # (r, P*)
        Cs, css = self._gen.test_forms(B, E, khat, spec.kss)
        train_r, test, var = self._gen.predictions(B, Cs, css[:, None], A, st.a[:, None], self.g_v, float(st.chi))
        train = spec.columns(self.mask) @ train_r[:, 0]
        return {"train_mean": train, "test_mean": test[:, 0], "test_var": var[:, 0], "B": B, "E": E}

    def observables(self, st: State, B, E, g_w: float, D: int) -> dict:
        """Adapted kernel, alignment, hidden-weight covariance (docs/theory.md §4)."""
        k = kernel_observables(self.spec, self.y_r, B, st.b)
        out = {"kernel_alignment": k["kernel_alignment"],
               "kernel_alignment_nngp": observe.alignment_of_spectrum(self.spec),
               "kernel_top_eigenvalues": k["kernel_top_eigenvalues"], "layers": [k]}
        out.update(weight_observables(self._gen, self.lam, E, st.a, g_w, D, st.chi))
        return out


def kernel_observables(spec: Spectrum, y_r, B, b) -> dict:
    """Alignment and top eigenvalues of an adapted kernel held on the range of K (B = U_r^T C U_r,
    eigenvalues b; C vanishes elsewhere: same quadratic form and norm) (docs/theory.md §4)."""
    return {"kernel_alignment": observe.kernel_target_alignment(y_r @ B @ y_r, spec.y2, np.linalg.norm(b)),
            "kernel_top_eigenvalues": np.sort(b)[::-1][:5].tolist()}


def weight_observables(gen, lam, E, a, g_w: float, D: int, chi: float) -> dict:
    """Hidden-weight covariance S = var_w M^-1 on the range of X^T and var_w on its complement (generated
    weight_forms, from the precision shift E), along the learned direction X^T alpha and its top
    eigenvalue over all D directions (docs/theory.md §4)."""
    M, v = gen.weight_forms(lam, E, a)
    mu, V = np.linalg.eigh(M)
    if mu.size and not mu[0] > 0:
        raise ConvergenceError("adaptive: hidden-weight covariance not positive definite", {"chi": chi})
    nv = np.linalg.norm(v)
    v_hat = v / nv if nv > 0 else v
    proj = V.T @ v_hat
    var_w = float(gen_observables.weight_cov_baseline(D, g_w))
    omega = float(gen_observables.weight_cov_excess(var_w * float(np.sum(proj**2 / mu)), D, g_w))
    # off the range of X^T (the null space of X, dimension D - r) S is the prior's var_w: when every
    # in-range eigenvalue fell below it (weak signal, order 1's output fluctuations), the top one lies there,
    # orthogonal to the learned direction; no modes at all (K = 0) leaves the prior's isotropic covariance
    top = var_w / mu[0] if mu.size else var_w
    overlap = float(abs(V[:, 0] @ v_hat)) if mu.size else 0.0
    if np.size(lam) < D and top < var_w:
        top, overlap = var_w, 0.0
    if not nv > 0:  # y = 0 or X = 0: no direction is learned, and a covariance along none is not -var_w
        omega = overlap = float("nan")
    return {
        "weight_cov_direction": omega,
        "weight_cov_top_eigenvalue": top,
        "weight_cov_baseline": var_w,
        "weight_cov_top_overlap": overlap,
        "direction_r": v_hat,  # learned direction in the range of X^T (for exact comparisons)
    }


def left_out(saddle):
    """(share, note) of a saddle on the range of K (LinearSaddle, numerics.deep_chain.DeepChain: `spec`, `mask`,
    `kappa`, `g_v`): the largest share of the NNGP's train or test means, or of a test variance, that the modes of K
    under RANK_RTOL of its largest carry, which the saddle leaves out, and the note a point carries for it (None
    under LEFT_OUT_WARN). The fit
    (g_v K + kappa)^-1 y has components ~ y_k / kappa on such a mode and a test point along it sees sqrt(lam_k) of
    them (an outside audit: a mode at 1e-11 of the largest, kappa = 1e-4, a test mean 0 against 0.031 at every
    order and depth, with exit 0)."""
    off = ~saddle.mask
    if not off.any():
        return 0.0, None
    # at depth the NNGP kernel of linear layers is K_1 carried through the upper layers' preactivations (generated;
    # a review: their g_w moved the share 100-fold)
    scale = 1.0
    for g_l in getattr(saddle, "g_ws", (1.0,))[1:]:
        scale = generated.nngp_kernels().layer_preactivations(scale, g_l)
    tab = observe.Tables(saddle.spec, np.ones(1), np.ones(1), saddle.kappa, saddle.g_v * scale, 0)
    share = 0.0  # of the train means too: with no test points a left-out mode's train mean read 0 against 0.97
    for c, means in ((tab.test[0, 0], observe.test_mean), (tab.train[0, 0], observe.train_mean)):
        if c.size and (saddle.spec.P_test or means is observe.train_mean):
            full = np.max(np.abs(means(saddle.spec, c)), initial=0.0)
            share = max(share, float(np.max(np.abs(means(saddle.spec, c * off)), initial=0.0) / max(full, 1e-300)))
    if saddle.spec.P_test:  # the test variances, point by point (a review: 28% off with the means untouched)
        v, vs = tab.var[0, 0], tab.var_scalar[0, 0]
        full = observe.test_var(saddle.spec, v, vs)
        # a floor at 1e-12 of the prior's k** keeps round-off in a vanishing variance from reading as a share
        part = np.abs(observe.test_var(saddle.spec, v * off, 0.0 * vs))
        share = max(share, float(np.max(part / np.maximum(full, 1e-12 * vs * saddle.spec.kss), initial=0.0)))
    if not share > LEFT_OUT_WARN:
        return share, None
    return share, (f"kernel adaptation leaves out the modes of K under {RANK_RTOL:g} of its largest, which carry "
                   f"{share:.2g} of the NNGP's means or test variances at this kappa; --method exact or loop hold them")


def mark_left_out(saddle, results: list) -> list:
    """Results not converged (values kept) where the modes the saddle leaves out carry over LEFT_OUT_FAIL of the
    NNGP's train or test means, with a warning over LEFT_OUT_WARN (left_out)."""
    share, note = left_out(saddle)
    for r in results if note else ():
        if share > LEFT_OUT_FAIL:
            r.unconverged(note, {"left_out_share": share})
        else:
            r.warnings.append(note)
    return results
