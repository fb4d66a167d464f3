"""Kernel adaptation at depth, linear networks (docs/theory.md §2d): one layer of the chain.

Given the layer below, a unit's preactivations are h ~ N(0, Sigma) with Sigma = g_l C_{l-1}; the layer's
conjugate field T = Ct_l tilts that law by exp(h^T T h), and its cumulant generator is the Gaussian
integral

    W(T; Sigma) = -(1/2) logdet(I - 2 Sigma T).

The chain's saddle (S = sum_l N_l [tr(Ct_l C_l) - W_l(Ct_l; g_l C_{l-1})] - L(C_L)) needs its two
first derivatives, written without any inverse of Sigma (which is singular when P > D):

    C_l      = dW/dT      = (I - 2 Sigma T)^-1 Sigma         (the adapted kernel, forward pass)
    dW/dSigma             = T (I - 2 Sigma T)^-1             (backward pass)
    Ct_{l-1} = (N_l/N_{l-1}) g_l dW/dSigma(Ct_l; g_l C_{l-1})

and the test quantities of the tilted law: with Sigma_* = the train-test block of the preactivation
covariance and sigma_** its test diagonal, the tilt leaves the law of the test preactivations given the
train ones unchanged, so

    C_*  = (I - 2 Sigma T)^-1 Sigma_*,      c_** = sigma_** + 2 diag(Sigma_*^T (I - 2 T Sigma)^-1 T Sigma_*).

The top field Ct_L is the two-layer one (derive.adaptive.conjugate_field).

The chain's Jacobians are derived from these same expressions by matcalc's differentiator (rules for
products, sums and solves, d(M^-1 B) = M^-1 (dB - dM M^-1 B)): the tangent maps (dSigma, dT) -> dC_l and
(dSigma, dT) -> dCt_{l-1}, and dC_L -> dCt_L through A = (g_v C_L + kappa)^-1, alpha = A y. Composed
layer by layer they are the Jacobian-vector product of the saddle map, which the Newton-Krylov solve
of the chain applies without ever forming the (L r^2)^2 Jacobian. Every form is a matrix
expression valid in any orthonormal basis of a subspace holding the ranges of the Sigma's (the range
of X for linear networks), which is where the runtime evaluates it. The closed forms are checked
against SymPy derivatives of the explicit log-determinant in tests/derive/test_deep_chain.py.
"""
from __future__ import annotations

import sympy as sp
from sympy.codegen.matrix_nodes import MatrixSolve

from . import adaptive, matcalc

n, q = sp.symbols("n q", integer=True, positive=True)  # basis size, number of test points
Sigma = sp.MatrixSymbol("Sigma", n, n)
T = sp.MatrixSymbol("T", n, n)
Ss = sp.MatrixSymbol("Ss", n, q)  # Sigma_*: train-test block
sss = sp.MatrixSymbol("sss", q, 1)  # sigma_**: test diagonal
g_l, N_l, N_prev = sp.symbols("g_l N_l N_prev", positive=True)
I = sp.Identity(n)


def layer_log_partition(Sigma_, T_):
    """W(T; Sigma) for explicit (SymPy Matrix) arguments."""
    return -sp.log((sp.eye(Sigma_.shape[0]) - 2 * Sigma_ * T_).det()) / 2


def layer_kernel():
    """C_l = dW/dT = (I - 2 Sigma T)^-1 Sigma, as a solve."""
    return MatrixSolve(I - 2 * Sigma * T, Sigma)


def layer_backward():
    """dW/dSigma = T (I - 2 Sigma T)^-1 = (I - 2 T Sigma)^-1 T (push-through), as a solve, times the
    chain factor (N_l/N_{l-1}) g_l: the conjugate field of the layer below. Like C_l = dW/dT it is
    the transpose of the entrywise gradient, which is the same for symmetric Sigma and T."""
    return (N_l / N_prev) * g_l * MatrixSolve(I - 2 * T * Sigma, T)


def layer_test_forms():
    """(C_*, c_**) of the tilted law: the train-test block and the test diagonal."""
    ones = sp.OneMatrix(n, 1)
    Cs = MatrixSolve(I - 2 * Sigma * T, Ss)
    quad = sp.HadamardProduct(Ss, MatrixSolve(I - 2 * T * Sigma, T) * Ss).T * ones
    return Cs, sss + 2 * quad


# -- the Jacobians: tangent maps of one layer and of the top field ---------------------------------------
dSigma = sp.MatrixSymbol("dSigma", n, n)
dT = sp.MatrixSymbol("dT", n, n)
dC = sp.MatrixSymbol("dC", adaptive.P, adaptive.P)
dA = sp.MatrixSymbol("dA", adaptive.P, adaptive.P)
dalpha = sp.MatrixSymbol("dalpha", adaptive.P, 1)


Cl = sp.MatrixSymbol("C", n, n)  # the layer's value C_l, a name for the solve inside its tangent
Gl = sp.MatrixSymbol("G", n, n)  # dW/dSigma = (I - 2 T Sigma)^-1 T, likewise


def layer_kernel_tangent():
    """dC_l = J_C (dSigma, dT): the derivative of C_l = (I - 2 Sigma T)^-1 Sigma along (dSigma, dT), with
    the solve that is C_l itself named C (so it is computed once)."""
    return matcalc.tangent(layer_kernel(), [(Sigma, dSigma), (T, dT)]).xreplace({layer_kernel(): Cl})


def layer_backward_tangent():
    """dCt_{l-1} = J_B (dSigma, dT): the derivative of the backward map along (dSigma, dT) (T = Ct_l), with
    dW/dSigma = (I - 2 T Sigma)^-1 T named G."""
    G = MatrixSolve(I - 2 * T * Sigma, T)
    return G, matcalc.tangent(layer_backward(), [(Sigma, dSigma), (T, dT)]).xreplace({G: Gl})


def fit_tangent():
    """(dA, dalpha) of A = (g_v C + kappa)^-1 and alpha = A y along dC, in terms of A itself."""
    M = adaptive.fit_operator()
    dA_ = matcalc.directional(M.I, adaptive.C, dC).xreplace({M.I: adaptive.A})
    return dA_, dA_ * adaptive.y


def top_field_tangent(order: int):
    """dCt_L: the derivative of the top conjugate field Ct_L(A, alpha) (derive.adaptive) along (dA, dalpha)."""
    return matcalc.tangent(adaptive.conjugate_field(order), [(adaptive.A, dA), (adaptive.alpha, dalpha)])


# -- any activation: the backward pass in Stein form -------------------------------------------------
m = sp.Symbol("m", integer=True, positive=True)  # number of draws of the tilted law
Zp = sp.MatrixSymbol("Zp", m, n)  # rows: Sigma^+ h for draws h of q_l (train preactivations)
Phi = sp.MatrixSymbol("Phi", m, n)  # rows: phi(h)
dPhi = sp.MatrixSymbol("dPhi", m, n)  # rows: phi'(h)
Ct = sp.MatrixSymbol("Ct", n, n)  # the layer's conjugate field (symmetric)
wts = sp.MatrixSymbol("wts", m, 1)  # weights of the draws (summing to 1)


def tilt_gradient():
    """Rows grad G(h) = 2 phi'(h) o (Ct phi(h)) of the tilt G = phi(h)^T Ct phi(h), Ct symmetric."""
    return 2 * sp.HadamardProduct(dPhi, Phi * Ct)


def stein_backward():
    """Ct_{l-1} = (N_l/N_{l-1}) g_l dW/dSigma with Stein's lemma, first derivatives of phi only:
    dW/dSigma = (1/2) sym E_q[(Sigma^+ h) grad G(h)^T], the expectation a weighted sum over draws
    (Sigma^+ the pseudo-inverse: only the range of Sigma reaches the layer below, whose features lie in
    it). For linear phi it is T (I - 2 Sigma T)^-1 on the range of Sigma (tests/derive/test_deep_chain.py);
    unlike Price's second-derivative form it is right for ReLU, whose phi'' is a delta."""
    E = Zp.T * sp.HadamardProduct(wts * sp.OneMatrix(1, n), tilt_gradient())
    return (N_l / N_prev) * g_l * (E + E.T) / 4


wts0 = sp.MatrixSymbol("wts0", m, 1)  # the same draws weighted to the untilted law


def score_backward():
    """The same field from the score of the Gaussian instead of phi': dW/dSigma = E_q[d ln N(h; 0, Sigma)/dSigma]
    = (1/2) E_q[Sigma^+ h h^T Sigma^+ - Sigma^+], with Sigma^+ = E_prior[Sigma^+ h h^T Sigma^+] estimated on the
    same draws (a control variate): (1/2) sum_i (wts_i - wts0_i) (Sigma^+ h_i)(Sigma^+ h_i)^T. No derivative
    of phi at all, so the estimate moves continuously with the fields even for ReLU, whose phi' is a step."""
    E = Zp.T * sp.HadamardProduct((wts - wts0) * sp.OneMatrix(1, n), Zp)
    return (N_l / N_prev) * g_l * E / 2


# -- the importance weights of the tilted layer law -----------------------------------------------------
Zd = sp.MatrixSymbol("Z", m, n)  # rows: draws z of the proposal N(0, R R^T), z = R u
Ud = sp.MatrixSymbol("U", m, n)  # rows: the standard normal u behind them


def proposal_log_ratio():
    """ln N(z; 0, I) - ln N(z; 0, R R^T) per draw, up to the draw-independent ln det R."""
    ones = sp.OneMatrix(n, 1)
    return (sp.HadamardProduct(Ud, Ud) * ones - sp.HadamardProduct(Zd, Zd) * ones) / 2


# -- a Gaussian base law N(mu, (F F^T)^-1) in weight space (where annealing starts) -----------------------
d = sp.Symbol("d", integer=True, positive=True)  # weight dimension
Rw = sp.MatrixSymbol("R", m, d)  # rows: r = (w - mu) F, the draws whitened by the base's precision factor F
Fw = sp.MatrixSymbol("F", d, d)
logdet_F = sp.Symbol("logdet_F")  # ln det F


def gaussian_log_density():
    """ln N(w; mu, (F F^T)^-1) = -|r|^2 / 2 + ln det F - (d/2) ln 2 pi per draw, r = (w - mu) F: normalised
    (an annealed mass is measured against it)."""
    return (-sp.HadamardProduct(Rw, Rw) * sp.OneMatrix(d, 1) / 2
            + (logdet_F - d * sp.log(2 * sp.pi) / 2) * sp.OneMatrix(m, 1))


def gaussian_score():
    """grad_w ln N(w; mu, (F F^T)^-1) = -F F^T (w - mu) per draw, in rows: -R F^T."""
    return -Rw * Fw.T


def tilt():
    """phi(h)^T Ct phi(h) per draw: the exponent of the tilted law q ∝ N(h; 0, Sigma) e^{phi^T Ct phi}."""
    return matcalc.RowQuadratic(Phi, Ct)


# -- the statistically linearised unit: a Gaussian proposal for the tilted law -------------------------
Xb = sp.MatrixSymbol("Xb", n, d)  # rows: beta_a x_a, the inputs scaled by the features' slopes
var_w = sp.Symbol("var_w", positive=True)


def linearised_precision():
    """Lambda = I - 2 var_w Xb^T Ct Xb: with phi(x_a.w) replaced by its linear part beta_a x_a.w the tilted
    unit law in prior-whitened weights z = w / sqrt(var_w) is N(z; 0, I) e^{var_w z^T Xb^T Ct Xb z} ∝
    N(z; 0, Lambda^-1) (where Lambda is positive definite). Its preactivations Xb w then have the covariance
    (I - 2 Sigma Ct)^-1 Sigma with Sigma = var_w Xb Xb^T: layer_kernel, by push-through."""
    return sp.Identity(d) - 2 * var_w * Xb.T * Ct * Xb
