"""Kernel-adaptation chain of a deep linear network (docs/theory.md §2d, §5), orders 0 and 1.

Unknowns: the conjugate fields Ct_1..Ct_L. One sweep of the saddle map (generated.adaptive_deep_linear,
top field generated.adaptive_linear): the forward pass C_l = (I - 2 Sigma_l Ct_l)^-1 Sigma_l with
Sigma_1 = K, Sigma_l = g_l C_{l-1}; the top field Ct_L(A, alpha) with A = (g_v C_L + kappa)^-1; the
backward pass Ct_{l-1} = (N_l/N_{l-1}) g_l Ct_l (I - 2 Sigma_l Ct_l)^-1. Every Sigma_l and C_l lives
in the range of K, so the whole chain is solved on U_r^T (.) U_r, r = rank K <= min(P, D): nothing of
size P x P is iterated on and K is never inverted. The fixed point is found by Anderson-accelerated
iteration of the sweep (a plain step whenever the accelerated one leaves the feasible set) and, where
that fails (the sweep stops contracting towards mean field), by Newton-Krylov steps with the generated
Jacobian-vector product of the sweep (numerics.newton); a state is accepted only if every C_l and
g_v C_L + kappa are positive definite on the range.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.linalg.lapack

from msat import generated

from ..errors import ConvergenceError
from ..spectral import Spectrum
from . import anderson, newton
from .linear_saddle import RANK_RTOL


#: the secant start extrapolates at most this many times the last step (in ln chi) beyond the last solution
SECANT_REACH = 2.0


@dataclass
class ChainState:
    """A converged chain at one chi (matrices on the range of K, r x r)."""

    chi: float
    T: list  # Ct_l projected, first to last
    Sigma: list  # preactivation covariances Sigma_l
    C: list  # adapted kernels C_l
    A: np.ndarray  # (g_v C_L + kappa)^-1 on the range
    a: np.ndarray  # U_r^T alpha
    iterations: int
    residual: float
    warnings: list = field(default_factory=list)
    solver: str = "anderson"  # or "newton-krylov" (numerics.newton), alone or after anderson failed


def _pd(M) -> bool:
    """Positive definite (a Cholesky factorisation exists): cheaper than eigenvalues."""
    try:
        np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        return False
    return True


class DeepChain:
    """The chain's saddle for widths N_1..N_L, prior scales g_1..g_L (g_1 is inside the spectrum's K)."""

    #: "anderson" (accelerated sweeps, Newton-Krylov where they fail) or "newton-krylov" (only)
    solver = "anderson"

    def __init__(self, spec: Spectrum, widths, g_ws, kappa: float, g_v: float, order: int):
        if order not in (0, 1):
            raise ValueError("linear kernel-adaptation orders are 0 and 1")
        lam = spec.lam
        self.spec, self.order = spec, order
        self.widths, self.g_ws = [float(n) for n in widths], [float(g) for g in g_ws]
        self.kappa, self.g_v = float(kappa), float(g_v)
        self.mask = lam > RANK_RTOL * max(lam.max(initial=0.0), 1e-300)
        self.lam, self.y_r = lam[self.mask], spec.yt[self.mask]
        self.r = int(self.mask.sum())
        self.layer = generated.deep_linear_adaptation()
        self.linear = generated.linear_adaptation()
        self.top = getattr(self.linear, f"conjugate_field_o{order}")
        self.top_tangent = getattr(self.layer, f"top_field_tangent_o{order}")
        self.fit_operator = generated.nonlinear_adaptation().fit_operator  # g_v C + kappa
        self.preactivations = generated.nngp_kernels().layer_preactivations  # Sigma_l = g_l C_{l-1}

    # -- one sweep of the saddle map ------------------------------------------------------------
    def forward(self, T):
        """(Sigma_l, C_l) for the fields T, or None when a layer's tilted law is not normalisable."""
        Sigma, Sigmas, Cs = np.diag(self.lam), [], []
        for l, Tl in enumerate(T):
            if l:
                Sigma = self.preactivations(Cs[-1], self.g_ws[l])
            C = self.layer.layer_kernel(Sigma, Tl)
            C = 0.5 * (C + C.T)
            if not _pd(C):
                return None
            Sigmas.append(Sigma)
            Cs.append(C)
        return Sigmas, Cs

    def sweep(self, T, chi):
        """The saddle map T -> T' and the forward quantities at T (None if infeasible)."""
        fw = self.forward(T)
        if fw is None:
            return None
        Sigmas, Cs = fw
        G = self.fit_operator(Cs[-1], self.kappa, self.g_v)
        try:
            Lg = np.linalg.cholesky(G)
        except np.linalg.LinAlgError:
            return None
        # LAPACK's triangular inverse directly: solve_triangular's checks cost 40 times the r x r work itself
        Li, info = scipy.linalg.lapack.dtrtri(Lg, lower=1)
        if info:
            return None
        A = Li.T @ Li
        a = A @ self.y_r
        new = [None] * len(T)
        new[-1] = self.top(A, a[:, None], self.widths[-1], float(chi), self.g_v)
        for l in range(len(T) - 1, 0, -1):
            Tl = self.layer.layer_backward(Sigmas[l], new[l], self.g_ws[l], self.widths[l], self.widths[l - 1])
            new[l - 1] = 0.5 * (Tl + Tl.T)
        return new, (Sigmas, Cs, A, a)

    def tangent(self, T, dT, chi, at):
        """The Jacobian of the saddle map at T applied to dT (generated tangent maps of every layer, the
        fit operator and the top field, composed in the sweep's order); ``at`` is sweep(T)."""
        new, (Sigmas, _, A, a) = at
        L = len(T)
        dSigmas, dCs = [], []
        for l in range(L):
            dSigma = self.preactivations(dCs[-1], self.g_ws[l]) if l else np.zeros_like(Sigmas[0])
            dC = self.layer.layer_kernel_tangent(Sigmas[l], T[l], dSigma, dT[l])
            dSigmas.append(dSigma)
            dCs.append(0.5 * (dC + dC.T))
        dA, da = self.layer.fit_tangent(A, self.y_r[:, None], dCs[-1], self.g_v)
        out = [None] * L
        out[-1] = self.top_tangent(A, a[:, None], dA, da, self.widths[-1], float(chi), self.g_v)
        for l in range(L - 1, 0, -1):
            d = self.layer.layer_backward_tangent(Sigmas[l], new[l], dSigmas[l], out[l], self.g_ws[l],
                                                  self.widths[l], self.widths[l - 1])
            out[l - 1] = 0.5 * (d + d.T)
        return out

    # -- the fixed point ------------------------------------------------------------------------------
    def initial(self):
        """The NNGP (docs/theory.md §5): every conjugate field zero."""
        return [np.zeros((self.r, self.r)) for _ in self.widths]

    def solve(self, chi: float, T0=None, tol: float = 1e-13, maxiter: int = 100) -> ChainState:
        """The chain's saddle at chi from T0 (the NNGP's zero fields if None). Where T0 is the last solution and
        the one before it is known, the start is their linear extrapolation in ln chi (the branch's secant),
        T0 itself if that fails: far above the prior's output scale Newton's reach shrinks with the targets,
        and steps from T0 alone failed and were split many times over (targets x 100: 3,065 Newton steps
        along a 5-point ladder, 401 with the secant)."""
        path = getattr(self, "_path", [])
        st = None
        if T0 is not None and len(path) == 2 and path[1][1] is T0 and chi not in (path[0][0], path[1][0]):
            (c0, T_0), (c1, T_1) = path
            f = (np.log(chi) - np.log(c1)) / (np.log(c1) - np.log(c0))
            if abs(f) <= SECANT_REACH:
                try:
                    st = self._solve(chi, [t1 + f * (t1 - t0) for t1, t0 in zip(T_1, T_0)], tol, maxiter)
                except (ConvergenceError, np.linalg.LinAlgError, FloatingPointError, ZeroDivisionError):
                    st = None  # the extrapolated start failed, however: the last solution's is tried
        if st is None:
            st = self._solve(chi, T0, tol, maxiter)
        self._path = (path + [(chi, st.T)])[-2:]
        return st

    def _solve(self, chi, T0, tol, maxiter) -> ChainState:
        L, r = len(self.widths), self.r

        def unpack(v):
            return [v[l * r * r:(l + 1) * r * r].reshape(r, r) for l in range(L)]

        def sweep(v):
            out = self.sweep(unpack(v), chi)
            return None if out is None else (np.concatenate([t.ravel() for t in out[0]]), out[1])

        def jvp(v, d, at):
            at = (unpack(at[0]), at[1])
            return np.concatenate([t.ravel() for t in self.tangent(unpack(v), unpack(d), chi, at)])

        x0 = np.concatenate([t.ravel() for t in (T0 or self.initial())])
        solver = self.solver
        if solver == "anderson":
            try:
                x, (Sigmas, Cs, A, a), it, res = anderson.solve(sweep, x0, chi, tol, maxiter)
            except ConvergenceError as failed:
                # where the saddle map stops contracting, sweeps leave the feasible set or stall; Newton
                # steps with the derived Jacobian still find the fixed point, from the best point they reached
                solver = "newton-krylov after anderson"
                x0 = anderson.best_or(failed, x0)
        if solver != "anderson":
            x, (Sigmas, Cs, A, a), it, res, _ = newton.solve(sweep, jvp, x0, chi, tol)
        return ChainState(chi, unpack(x), Sigmas, Cs, A, a, it, res, solver=solver)

    # -- quantities at the saddle -----------------------------------------------------------------
    def predictions(self, st: ChainState) -> dict:
        """Train/test means and test variances (generated predictions of §2b on the last layer, test
        blocks carried through the layers by the generated test forms)."""
        spec = self.spec
        Ss = spec.Kt[:, self.mask].T
        sss = spec.kss[:, None]
        for l, (Sigma, T) in enumerate(zip(st.Sigma, st.T)):
            if l:
                Ss, sss = self.preactivations(Ss, self.g_ws[l]), self.preactivations(sss, self.g_ws[l])
            Ss, sss = self.layer.layer_test_forms(Sigma, T, Ss, sss)
        train_r, test, var = self.linear.predictions(st.C[-1], Ss, sss, st.A, st.a[:, None], self.g_v, float(st.chi))
        return {"train_mean": spec.columns(self.mask) @ train_r[:, 0], "test_mean": test[:, 0], "test_var": var[:, 0]}
