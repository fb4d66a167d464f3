"""The posterior of the hidden weights with the readout integrated out (docs/theory.md §7): a second
ground truth for any activation.

Given the hidden weights W the network is linear in its readout a: with the features Phi = phi(X W^T)
(P x N), f = Phi a, a ~ N(0, var_a I) and y | f ~ N(f, s2 I), where var_a and s2 are the inverse
curvatures of derive.network's readout prior and likelihood (g_v/(chi N) and kappa/chi). So y | W is
Gaussian with covariance

    Cov = var_a Phi Phi^T + s2 I,

and log p(W | D) = -(1/2) y^T Cov^-1 y - (1/2) logdet Cov + log prior(W) + const. Its gradient in the
features, d/dPhi, is matcalc's gradient of that expression (SymPy, rule by rule); the chain rule to W,
dW = (G o phi'(H))^T X, is the structure of the emitted kernel. Every solve with Cov reaches the kernels
as its result (a = Cov^-1 y, CiPhi = Cov^-1 Phi, CiB = Cov^-1 B^T), so that the runtime factorises Cov
once per step.

Given W, the outputs are jointly Gaussian with y; conditioning gives each draw's mean and variance of
f on the training and test points (Rao-Blackwellisation: the sampler averages these instead of sampled
outputs):

    E[f | W, y]  = var_a Phi Phi^T a,        E[f* | W, y] = var_a Phi* Phi^T a,
    Var[f_mu | W, y] = s2 var_a (Phi Cov^-1 Phi^T)_mu,mu,
    Var[f*_t | W, y] = var_a |Phi*_t|^2 - var_a^2 (B Cov^-1 B^T)_tt,   B = Phi* Phi^T.
"""
from __future__ import annotations

import sympy as sp

from . import network
from .matcalc import LogDet, gradient

P, N, Q, Dd = sp.symbols("P N Q D", integer=True, positive=True)
Phi = sp.MatrixSymbol("Phi", P, N)  # train features phi(X W^T)
Phis = sp.MatrixSymbol("Phis", Q, N)  # test features
dPhi = sp.MatrixSymbol("dPhi", P, N)  # phi'(X W^T)
X = sp.MatrixSymbol("X", P, Dd)
W = sp.MatrixSymbol("W", N, Dd)
y = sp.MatrixSymbol("y", P, 1)
a = sp.MatrixSymbol("a", P, 1)  # Cov^-1 y
CiPhi = sp.MatrixSymbol("CiPhi", P, N)  # Cov^-1 Phi
G = sp.MatrixSymbol("G", P, N)  # d log p / d Phi
B = sp.MatrixSymbol("B", Q, P)  # Phi* Phi^T
CiB = sp.MatrixSymbol("CiB", P, Q)  # Cov^-1 B^T
var_a, s2 = sp.symbols("var_a s2", positive=True)
ya, logdet = sp.symbols("ya logdet", real=True)  # y^T Cov^-1 y and logdet Cov


def variances():
    """(var_a, s2): the readout's prior variance and the noise variance, the inverse curvatures of
    derive.network's log prior of a readout and log likelihood of an output."""
    curv_f = -sp.diff(network.likelihood(), network.f_mu, 2)
    return network.prior_variances()[1], sp.simplify(1 / curv_f)


def covariance():
    """Cov = var_a Phi Phi^T + s2 I: the covariance of y given W."""
    return var_a * Phi * Phi.T + s2 * sp.Identity(P)


def log_marginal():
    """log N(y; 0, Cov) up to the constant: -(1/2) y^T Cov^-1 y - (1/2) logdet Cov."""
    return -sp.Trace(y.T * covariance().I * y) / 2 - LogDet(covariance()) / 2


def _solved(expr):
    """expr with each product Cov^-1 y, y^T Cov^-1, Cov^-1 Phi named by its solve (Cov symmetric)."""
    Ci = covariance().I
    terms = expr.args if isinstance(expr, sp.MatAdd) else (expr,)
    out = []
    for t in terms:
        coeff, mats = t.as_coeff_matrices()
        mats, k = list(mats), 0
        while k < len(mats) - 1:
            pair = (mats[k], mats[k + 1])
            if pair == (Ci, y):
                mats[k:k + 2] = [a]
            elif pair == (y.T, Ci):
                mats[k:k + 2] = [a.T]
            elif pair == (Ci, Phi):
                mats[k:k + 2] = [CiPhi]
            else:
                k += 1
        if Ci in mats:
            raise ValueError(f"an inverse of Cov is left in {t}")
        out.append(coeff * sp.MatMul(*mats))
    return sp.MatAdd(*out).doit() if len(out) > 1 else out[0]


def feature_gradient():
    """G = d log N(y; 0, Cov) / d Phi, by matcalc.gradient, with the solves named."""
    return _solved(gradient(log_marginal(), Phi))


def log_marginal_value():
    """The same log density from its two scalars ya = y^T Cov^-1 y and logdet = logdet Cov."""
    return log_marginal().xreplace({sp.Trace(y.T * covariance().I * y): ya, LogDet(covariance()): logdet})


def weight_gradient():
    """d log p(W | D) / dW: the chain rule through H = X W^T, (G o phi'(H))^T X, plus the slope of
    derive.network's hidden-weight prior (its coefficient 2 d prior_w / d ww times W)."""
    return sp.HadamardProduct(G, dPhi).T * X + network.slopes()[2] * W


def hidden_log_prior():
    """sum_i prior_w(|w_i|^2) = prior_w at ww = |W|_F^2 (it is linear in ww)."""
    return network.prior_hidden()


def conditional_moments():
    """(E[f | W, y], Var[f | W, y], E[f* | W, y], Var[f* | W, y]) for one W (columns), by Gaussian
    conditioning. On the training points Sigma_ff = var_a Phi Phi^T = Cov - s2 I, so the conditional
    covariance Sigma_ff - Sigma_ff Cov^-1 Sigma_ff = s2 Sigma_ff Cov^-1 and its diagonal is
    s2 var_a rowsum(Phi o Cov^-1 Phi): no P x P product."""
    train = var_a * Phi * (Phi.T * a)
    train_var = s2 * var_a * sp.HadamardProduct(Phi, CiPhi) * sp.OneMatrix(N, 1)
    test = var_a * Phis * (Phi.T * a)
    var = var_a * sp.HadamardProduct(Phis, Phis) * sp.OneMatrix(N, 1) \
        - var_a**2 * sp.HadamardProduct(B, CiB.T) * sp.OneMatrix(P, 1)
    return train, train_var, test, var
