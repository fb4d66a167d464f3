"""Observables shared by every method (docs/theory.md §4), as SymPy expressions.

  kernel-target alignment   y^T C y / (|y|^2 ||C||_F)  (0 for C = 0)
  learned direction         u = X^T alpha / |X^T alpha| with alpha = (y - <f>)/kappa: the direction
                            along which the hidden weights learn (docs/theory.md §2a, §2b)
  weight-covariance excess  u^T (1/N) E[W^T W] u - g_w/D: the hidden-weight second moment along u
                            beyond the prior's
"""
from __future__ import annotations

import sympy as sp

yCy, yy, fro = sp.symbols("yCy yy fro", real=True)
quad, D, g_w, kappa = sp.symbols("quad D g_w kappa", positive=True)
P, Dm = sp.symbols("P Dm", integer=True, positive=True)
X = sp.MatrixSymbol("X", P, Dm)
y = sp.MatrixSymbol("y", P, 1)
m = sp.MatrixSymbol("m", P, 1)


def alignment():
    """Kernel-target alignment from its three parts y^T C y, |y|^2 and ||C||_F; 0 where a zero kernel or a zero
    target leaves nothing to align (0/0)."""
    return sp.Piecewise((0, (fro <= 0) | (yy <= 0)), (yCy / (yy * fro), True))


def learned_direction():
    """X^T alpha with alpha = (y - m)/kappa (unnormalised; the norm is plumbing)."""
    return X.T * (y - m) / kappa


def weight_cov_baseline():
    """The prior's second moment along any unit direction: the hidden-weight prior variance."""
    from .network import D as D_net, g_w as g_w_net, prior_variances

    return prior_variances()[0].xreplace({D_net: D, g_w_net: g_w})


def weight_cov_excess():
    """The second moment along a unit direction beyond the prior's (g_w/D)."""
    return quad - weight_cov_baseline()
