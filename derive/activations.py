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


#: the mean and the standard deviation of a Gaussian part of phi's argument
m, s = sp.Symbol("m", real=True), sp.Symbol("s", positive=True)


def smoothed_phi(name: str):
    """E[phi(m + s xi)], xi ~ N(0, 1), as an expression in (m, s) (docs/theory.md §6): by integration for
    linear and relu (whose integrand vanishes below xi = -m/s); for erf by integrating in m its
    m-derivative E[erf'(m + s xi)], a Gaussian integral, from E[erf(s xi)] = 0 at m = 0 (erf is odd)."""
    xi = sp.Symbol("xi", real=True)
    gauss = sp.exp(-xi**2 / 2) / sp.sqrt(2 * sp.pi)
    if name == "linear":
        out = sp.integrate((m + s * xi) * gauss, (xi, -sp.oo, sp.oo))
    elif name == "relu":
        out = sp.integrate((m + s * xi) * gauss, (xi, -m / s, sp.oo))
    elif name == "erf":
        slope = sp.simplify(sp.integrate(sp.diff(sp.erf(m + s * xi), m) * gauss, (xi, -sp.oo, sp.oo)))
        t = sp.Symbol("t", real=True)
        # SymPy's antiderivative carries polar lifts of a negative number; the principal branch is meant
        out = sp.integrate(slope.subs(m, t), (t, 0, m)).replace(sp.polar_lift, lambda z: z)
    else:
        raise KeyError(name)
    return sp.simplify(out)


def nngp_kernel(name: str):
    """K^phi_ab as an expression in K_aa, K_bb, K_ab (docs/theory.md §1)."""
    if name == "linear":
        return Kab
    if name == "erf":
        # (2/pi) asin(2 K_ab / sqrt((1 + 2 K_aa)(1 + 2 K_bb))) as an angle: asin loses digits as its argument
        # nears 1 (large inputs, K_aa ~ 1e12: 2e-10 relative on the diagonal), and the cosine side written out,
        # (1 + 2 K_aa)(1 + 2 K_bb) - 4 K_ab^2 = 1 + 2 K_aa + 2 K_bb + 4 (K_aa K_bb - K_ab^2), keeps the Gram
        # determinant exact on the diagonal; round-off cannot push the clamped determinant below 0
        cos_side = sp.sqrt(1 + 2 * Kaa + 2 * Kbb + 4 * sp.Max(0, Kaa * Kbb - Kab**2))
        return 2 / sp.pi * sp.atan2(2 * Kab, cos_side)
    if name == "relu":
        # |a||b| sin t and the angle t between the two inputs without dividing by |a||b| (atan2(0, 0) = 0): the
        # kernel is 0, not 0/0, for an input of zero norm; round-off in K_ab cannot push sin t past its range
        sin_part = sp.sqrt(sp.Max(0, Kaa * Kbb - Kab**2))
        t = sp.atan2(sin_part, Kab)
        return (sin_part + (sp.pi - t) * Kab) / (2 * sp.pi)
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
