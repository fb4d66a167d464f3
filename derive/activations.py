"""Activations, their derivatives and their NNGP kernels (docs/theory.md §1, §6).

phi(h) for linear, erf and relu, the derivative phi'(h) by SymPy differentiation (the
single-neuron sampler's gradient needs it), and the arc-sine / arc-cosine NNGP kernels
K^phi_ab = E_{h ~ N(0, K)}[phi(h_a) phi(h_b)] in terms of (K_aa, K_bb, K_ab). The closed forms
are docs/theory.md §1's; tests check them against Monte Carlo over Gaussian pre-activations.
"""
from __future__ import annotations

import sympy as sp

h = sp.Symbol("h", real=True)
Kaa, Kbb = sp.symbols("K_aa K_bb", nonnegative=True)
Kab = sp.Symbol("K_ab", real=True)

ACTIVATIONS = ("linear", "erf", "relu")


def phi(name: str):
    if name == "linear":
        return h
    if name == "erf":
        return sp.erf(h)
    if name == "relu":
        return sp.Max(h, 0)
    raise KeyError(name)


def dphi(name: str):
    """phi'(h) by differentiation (relu: the Heaviside step, with phi'(0) = 0)."""
    d = sp.diff(phi(name), h)
    if name == "relu":
        d = d.rewrite(sp.Heaviside).subs(sp.Heaviside(h), sp.Heaviside(h, 0))
        d = sp.Piecewise((1, h > 0), (0, True)) if d.has(sp.Heaviside) else d
    return sp.simplify(d)


def nngp_kernel(name: str):
    """K^phi_ab as an expression in K_aa, K_bb, K_ab (docs/theory.md §1)."""
    if name == "linear":
        return Kab
    if name == "erf":
        return 2 / sp.pi * sp.asin(2 * Kab / sp.sqrt((1 + 2 * Kaa) * (1 + 2 * Kbb)))
    if name == "relu":
        norm = sp.sqrt(Kaa * Kbb)
        # clip the cosine to [-1, 1]: round-off in K_ab can leave it slightly outside
        cos_t = sp.Max(-1, sp.Min(1, Kab / norm))
        t = sp.acos(cos_t)
        expr = norm / (2 * sp.pi) * (sp.sqrt(1 - cos_t**2) + (sp.pi - t) * cos_t)
        return sp.Piecewise((0, norm <= 0), (expr, True))
    raise KeyError(name)


def input_kernels():
    """(K, k*, k**) of the hidden layer's inputs (docs/theory.md §1): K_ab = (g_w/D) x_a . x_b on the train
    inputs, k*_at between train and test inputs, k**_t = (g_w/D) |x*_t|^2, in index notation."""
    from .indices import A, mul, scale, simplify

    g_w, D = sp.symbols("g_w D", positive=True)
    c = g_w / D
    K = scale(c, mul(A("X", "a", "d"), A("X", "b", "d")))
    ks = scale(c, mul(A("X", "a", "d"), A("X_test", "t", "d")))
    kss = scale(c, mul(A("X_test", "t", "d"), A("X_test", "t", "d")))
    return simplify(K, ("a", "b")), simplify(ks, ("a", "t")), simplify(kss, ("t",))


def layer_preactivations():
    """The covariance of layer l's preactivations from the kernel of layer l-1: g_l K_{l-1}
    (h^l = W_l phi(h^{l-1}), W_l ~ N(0, g_l/N_{l-1}); docs/theory.md §2d)."""
    g, K = sp.Symbol("g", positive=True), sp.MatrixSymbol("K", sp.Symbol("n", integer=True, positive=True),
                                                              sp.Symbol("m", integer=True, positive=True))
    return g * K
