"""Order 2 for any activation (docs/theory.md §2e): the kernel field's one loop from the cumulants of
the tilted neuron law.

The field is the kernel C of the training points together with the block Cs of kernel entries
between training and test points (the test-test block enters no output and is integrated out). In
the coordinates c_a = C_pq (p <= q) and Cs_pt, the large-N law of the field is
ln p = -N I(c) + (1/2) logdet I''(c), I the Legendre transform of the neuron's cumulant generator
W(t) = ln E[exp(t . u)], u = (phi_p phi_q, phi_p phi*_t). With S0 = N I - L (L the fit term of §2b
at order 1, a function of C alone) and its saddle c0 (§2b's order-1 saddle), the one loop of an
output m(c) with G = S0''^-1 is

    <m> = m + (1/2) tr(m'' G) - (1/2) (G m')^T S0'''[., G] + (1/2) (G m')^T d logdet I'',

with Legendre calculus for the prior part: I'' = B = W''^-1, I'''[v, G] = -(B v) . W'''[B G B] and
d_j logdet I'' = -(B W'''[B])_j, where W'''[Y]_c = E[(u~^T Y u~) u~_c] (u~ = u - E u) is the third
cumulant contracted twice. So S0'''[., G] = -N B W'''[B G B] - L'''[., G] and

    <m> - m = (1/2) tr(m'' G) + (1/2) (G m')^T (N B W'''[B G B] + L'''[., G] - B W'''[B]).

B enters only through G = (N B - L'')^-1 = W'' (N - L'' W'')^-1 and G B = (N - W'' L'')^-1, so the
sample covariance W'' is never inverted (resolvent_operator).

The derivative tensors of L and of the outputs (train mean g_v C A y, test mean g_v Cs^T A y,
A = (g_v C + kappa)^-1) come from matcalc's differentiator as trace terms and are emitted as einsum
contractions (derive.einsum), those with two field directions already contracted with G; for a
linear network the cumulants are Gaussian, the derivatives at T = 0 of -(1/2) logdet(I - 2 C T),
emitted the same way. The formula above and these tensors are all the runtime evaluates.
"""
from __future__ import annotations

import sympy as sp

from . import adaptive, matcalc
from .matcalc import LogDet

P, Q = adaptive.P, sp.Symbol("Q", integer=True, positive=True)
C, y, A = adaptive.C, adaptive.y, adaptive.A
Cs = sp.MatrixSymbol("Cs", P, Q)
g_v, chi = adaptive.g_v, adaptive.chi
X, Y, Z = (sp.MatrixSymbol(s, P, P) for s in ("X", "Y", "Z"))
Xs, Ys = sp.MatrixSymbol("Xs", P, Q), sp.MatrixSymbol("Ys", P, Q)
e, es = sp.MatrixSymbol("e", P, 1), sp.MatrixSymbol("es", Q, 1)  # output selectors (train, test)


def _named(expr):
    """expr with (g_v C + kappa)^-1 named A."""
    return expr.xreplace({adaptive.fit_operator().I: A})


def fit_term():
    """L(C) = -(chi/2) y^T A y - (1/2) logdet(g_v C + kappa): the fit term of §2b at order 1."""
    M = adaptive.fit_operator()
    return -(chi / 2) * sp.Trace(y.T * M.I * y) - LogDet(M) / 2


def fit_derivatives():
    """Trace terms of dL[X], d2L[X, Y], d3L[X, Y, Z]."""
    d1 = matcalc.directional(fit_term(), C, X)
    d2 = matcalc.directional(d1, C, Y)
    d3 = matcalc.directional(d2, C, Z)
    return tuple(matcalc.trace_terms(_named(d)) for d in (d1, d2, d3))


def outputs():
    """(train mean selected by e, test mean selected by es): e^T g_v C A y and es^T g_v Cs^T A y."""
    M = adaptive.fit_operator()
    return sp.Trace(e.T * g_v * C * M.I * y), sp.Trace(es.T * g_v * Cs.T * M.I * y)


css = sp.Symbol("css", positive=True)  # a test point's own feature variance c**_t = (1/N) sum_i phi_i(x*_t)^2


def test_variance():
    """v_t = (g_v/chi)(c**_t - g_v Cs_t^T A Cs_t): the variance of test output t given the field (docs/theory.md
    §2e). c**_t is one more coordinate of the field, which enters no other output, linearly."""
    M = adaptive.fit_operator()
    return g_v / chi * css - g_v**2 / chi * sp.Trace(es.T * Cs.T * M.I * Cs * es)


def test_variance_derivatives():
    """Trace terms of v_t's derivatives along C (X), Cs (Xs) and the second ones along (C, C), (C, Cs),
    (Cs, Cs), and its slope along its own c**_t (a number)."""
    v = test_variance()
    dc, ds = matcalc.directional(v, C, X), matcalc.directional(v, Cs, Xs)
    terms = lambda e: matcalc.trace_terms(_named(e))  # noqa: E731
    return {"c": terms(dc), "s": terms(ds), "cc": terms(matcalc.directional(dc, C, Y)),
            "cs": terms(matcalc.directional(dc, Cs, Ys)), "ss": terms(matcalc.directional(ds, Cs, Ys)),
            "diag": sp.diff(v, css)}


def output_derivatives():
    """Trace terms of the outputs' first and second derivatives: train mean along C (X, then X, Y);
    test mean along C (X), along Cs (Xs), and the second derivatives along (C, C) and (C, Cs) (it is
    linear in Cs)."""
    m, ms = outputs()
    dm = matcalc.directional(m, C, X)
    dms_c = matcalc.directional(ms, C, X)
    dms_s = matcalc.directional(ms, Cs, Xs)
    return {
        "train_c": matcalc.trace_terms(_named(dm)),
        "train_cc": matcalc.trace_terms(_named(matcalc.directional(dm, C, Y))),
        "test_c": matcalc.trace_terms(_named(dms_c)),
        "test_s": matcalc.trace_terms(_named(dms_s)),
        "test_cc": matcalc.trace_terms(_named(matcalc.directional(dms_c, C, Y))),
        "test_cs": matcalc.trace_terms(_named(matcalc.directional(dms_c, Cs, Ys))),
    }


# -- Gaussian cumulants (linear phi): derivatives of W at the tilted law N(0, K) ----------------------
n = sp.Symbol("n", integer=True, positive=True)
K = sp.MatrixSymbol("K", n, n)
T = sp.MatrixSymbol("T", n, n)
U, V, R = (sp.MatrixSymbol(s, n, n) for s in ("U", "V", "R"))


def gaussian_cumulants():
    """Trace terms of W''[U, V] and W'''[U, V, R] of W(T) = -(1/2) logdet(I - 2 K T) at T = 0, the
    cumulant generator of h h^T under h ~ N(0, K), in the matrix directions of T."""
    W = -LogDet(sp.Identity(n) - 2 * K * T) / 2
    d2 = matcalc.directional(matcalc.directional(W, T, U), T, V)
    d3 = matcalc.directional(d2, T, R)
    at0 = {T: sp.ZeroMatrix(n, n)}
    return tuple(matcalc.trace_terms(d.xreplace(at0).doit()) for d in (d2, d3))


# -- the one loop in the field's coordinates ------------------------------------------------------------
d, k = sp.symbols("d k", integer=True, positive=True)  # field coordinates, outputs
m1 = sp.MatrixSymbol("m1", d, k)  # columns: m' of each output
m2G = sp.MatrixSymbol("m2G", k, 1)  # tr(m'' G) per output
G = sp.MatrixSymbol("G", d, d)
W2 = sp.MatrixSymbol("W2", d, d)  # W'' itself: the loop never needs its inverse B
Hw3 = sp.MatrixSymbol("Hw3", d, 1)  # H W3[Y], H = (N 1 - W'' L'')^-1 = G B
w3 = sp.MatrixSymbol("w3", d, 1)  # W'''[Y] along cumulant_direction
ell = sp.MatrixSymbol("ell", d, 1)  # L'''[., G]
L2 = sp.MatrixSymbol("L2", d, d)  # L'' (training block)
N = adaptive.N


def resolvent_operator():
    """N 1 - W'' L'', whose inverse H gives the propagator without inverting W'': from
    G (N B - L2) = 1 with B = W''^-1, G = W'' (N 1 - L2 W'')^-1 = H W'' and G B = H (push-through
    identity). Where L2 is zero (off the training coordinates) this operator is N 1, so only its
    training block needs a solve, and a singular W'' (fewer draws than coordinates, repeated inputs)
    is no obstacle."""
    return N * sp.Identity(d) - W2 * L2


def cumulant_direction():
    """Y = N B G B - B: the prior's third derivative N I3[., G] = -N B W3[BGB] and the prefactor's
    gradient -B W3[B] enter the loop only as B W3[N BGB - B] (W3 is linear in its direction), so one
    contraction of the third cumulant W3 serves both. With I = G (N B - L2) it is B G L2 =
    (L2 + L2 G L2) / N, the form returned: it vanishes off the training coordinates (where L2 lives),
    so W3 needs only their block, and it has no cancellation between N BGB and B at large N."""
    return (L2 + L2 * G * L2) / N


def spread():
    """<m^2> - <m>^2 per output (a row) to first order: 2 w2 m'^T G m' with w2 the weight of
    m_ij G_ij in the first-order loop term (derive.fieldbasis.first_order_weights, read off the loop
    engine): the outputs' variance over the field, which a test output's variance adds to <v_t>."""
    from .fieldbasis import first_order_weights

    w2 = first_order_weights()[0]
    return 2 * w2 * sp.OneMatrix(1, d) * sp.HadamardProduct(m1, G * m1)


def loop_correction():
    """<m> - m per output (a column): (1/2) tr(m'' G) + (1/2) (G m')^T (B W3[Y] + ell), Y from
    cumulant_direction, written with G B = H (resolvent_operator) so that no inverse of W'' appears:
    (1/2) tr(m'' G) + (1/2) (m'^T H W3[Y] + (G m')^T ell), G being symmetric."""
    return m2G / 2 + (m1.T * Hw3 + (G * m1).T * ell) / 2
