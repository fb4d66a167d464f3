"""The Wishart field's derivatives in the field basis (docs/theory.md §2c): the O(n^3) structure.

In the basis T with T^T F^-1 T = I and T^T Phi^T A^-1 Phi T = diag(mu) (F = T T^T; T comes from
the SVD of Phi F^1/2), the chains Phi^T A^-1 Phi, y^T A^-1 Phi, Phi^T A^-1 y become diag(mu), b^T,
b (b = T^T Phi^T A^-1 y), and F, F^-1 become the identity. ``structured()`` rewrites every
derivative of derive.kernelfield that way: what is left are products of diag(mu), b, b^T,
Q_T = T^T Q T and the directions -- a Hadamard Hessian plus one low-rank term, and a loop source
that needs only the Gaussian moments E[X W X] (derive.gaussian).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr

from .kernelfield import F, Phi, Q, X, Y, derivatives, fit_operator, p, readout, variance_derivatives, y
from .matcalc import trace_terms


# A term is (coefficient, tokens): a product of the tokens "Mu" (diag(mu)), "b" (column), "bT" (row),
# "Q" (Q_T), "X", "Y", "p"/"pT" (a test covector in the basis, u = T^T p); a scalar term is the trace of
# its product.
_CHAINS = {("PhiT", "Ainv", "Phi"): "Mu", ("yT", "Ainv", "Phi"): "bT", ("PhiT", "Ainv", "y"): "b"}
_BASIS_IDENTITY = ("F", "Finv")  # T^-1 F T^-T = I and T^T F^-1 T = I


def _token(m):
    A = fit_operator()
    table = {F: "F", Phi: "Phi", Phi.T: "PhiT", y: "y", y.T: "yT", Q: "Q", X: "X", Y: "Y",
             F.I: "Finv", A.I: "Ainv", p: "p", p.T: "pT"}
    for k, v in table.items():
        if m == k:
            return v
    if isinstance(m, sp.MatPow) and m.exp == -1 and m.base == F:
        return "Finv"
    if isinstance(m, sp.Identity):
        return None
    raise ValueError(f"unexpected factor {m}")


def _flatten(expr):
    """(coefficient, factor list) of a product of matrices (nested MatMuls flattened)."""
    if isinstance(expr, sp.MatMul):
        coeff, out = sp.S.One, []
        for a in expr.args:
            if isinstance(a, MatrixExpr):
                c, f = _flatten(a)
                coeff *= c
                out += f
            else:
                coeff *= a
        return coeff, out
    if isinstance(expr, sp.MatrixExpr):
        return sp.S.One, [expr]
    raise ValueError(f"not a matrix product: {expr}")


def _reduce(tokens):
    """Apply the chain rules left to right, then drop the basis identities; None if any of
    Phi, A^-1, y survives (the term is not expressible in the basis quantities)."""
    out = list(tokens)
    changed = True
    while changed:
        changed = False
        for i in range(len(out) - 2):
            rep = _CHAINS.get(tuple(out[i:i + 3]))
            if rep:
                out[i:i + 3] = [rep]
                changed = True
                break
    out = [t for t in out if t not in _BASIS_IDENTITY]
    if any(t in ("Phi", "PhiT", "Ainv", "y", "yT") for t in out):
        return None
    return out


def _terms(expr):
    """Split an expression into (coefficient, tokens, is_trace) terms."""
    expr = sp.expand(expr)
    out = []
    for term in sp.Add.make_args(expr):
        if isinstance(term, MatrixExpr):
            parts = sp.MatAdd.make_args(sp.expand(term)) if isinstance(term, sp.MatAdd) else [term]
            for p in parts:
                c, f = _flatten(p)
                out.append((c, [t for t in map(_token, f) if t], False))
            continue
        for coeff, mats in trace_terms(term):  # coefficient * tr(product)
            c, f = _flatten(sp.MatMul(*mats))
            out.append((coeff * c, [t for t in map(_token, f) if t], True))
    return out


def _basis_terms(expr):
    """Terms of a derivative in the basis: (coefficient, reduced tokens, is_trace); traces are
    rotated until every chain closes."""
    out = []
    for c, toks, is_trace in _terms(expr):
        rotations = [toks[r:] + toks[:r] for r in range(len(toks))] if is_trace else [toks]
        for rot in rotations:
            red = _reduce(rot)
            if red is not None:
                out.append((sp.factor(c), red, is_trace))
                break
        else:
            raise ValueError(f"term does not reduce to basis quantities: {toks}")
    return out


def _rotate_last(tokens, last):
    """Cyclic rotation of a trace's tokens that ends with ``last`` (which occurs once)."""
    i = tokens.index(last)
    return tokens[i + 1:] + tokens[:i + 1]


@dataclass(frozen=True)
class Structured:
    """The §2c one-loop ingredients in the basis (see module doc). Each list holds
    (coefficient, token lists) as documented per field.

    gradient   (c, L): dS[Y] = sum c tr(L Y), i.e. the gradient is sum c L^T (symmetrised);
    hadamard   (c, D1, D2): d2S[X, X] contains c tr(D1 X D2 X) = sum_ij c d1_i d2_j X_ij^2;
    lowrank    (c, W): d2S[X, X] contains c b^T X W X b;
    source     (c, L1, W, L3): E d3S[X, X, Y] = sum c tr(L1 E[X W X] L3 Y), X ~ N(0, H^-1);
    readout    (c, R): beta = sum c R;
    slope      (c, L, R): dbeta[X] = sum c L X R;
    curvature  (c, L, W, R): E d2beta[X, X] = sum c L E[X W X] R;
    weights    (w2, w1) of the first-order formula <O> = O + w2 O_ij G_ij + w1 O_i G_ij S_jkl G_kl.
    """

    gradient: tuple
    hadamard: tuple
    lowrank: tuple
    source: tuple
    readout: tuple
    slope: tuple
    curvature: tuple
    weights: tuple


def _split_two(tokens, mark="X"):
    i = tokens.index(mark)
    j = tokens.index(mark, i + 1)
    return tokens[:i], tokens[i + 1:j], tokens[j + 1:]


def first_order_weights():
    """(w2, w1): coefficients of O_ij G_ij and O_i G_ij S_jkl G_kl in the first-order loop term,
    read off derive.loops.expand_components (Taylor + Wick), not typed."""
    from .loops import expand_components

    c1, s = expand_components(1)
    G, O1, O2, S3 = s["G"][0, 0], s["O1"][0], s["O2"][0, 0], s["S3"](0, 0, 0)
    poly = sp.Poly(c1, O1, O2)
    w2 = poly.coeff_monomial(O2) / G
    w1 = sp.expand(poly.coeff_monomial(O1) / (G**2 * S3))
    if w1.free_symbols or w2.free_symbols:
        raise ValueError("first-order loop term is not of the index form")
    return sp.nsimplify(w2), sp.nsimplify(w1)


@lru_cache(maxsize=None)
def structured() -> Structured:
    d = derivatives()
    grad, had, low, src, rd, slope, curv = [], [], [], [], [], [], []
    for c, t, _ in _basis_terms(d["dS"]):
        grad.append((c, tuple(_rotate_last(t, "X")[:-1])))
    for c, t, _ in _basis_terms(d["d2S"]):
        if "b" in t:
            r = _rotate_last(t, "b")  # bT X W X b
            if r[0] != "bT" or r.count("X") != 2:
                raise ValueError(f"unexpected low-rank term {r}")
            low.append((c, tuple(_split_two(r)[1])))
        else:
            r = _rotate_last(t, "X")  # D1 X D2 X
            i = r.index("X")
            d1, d2 = tuple(r[:i]), tuple(r[i + 1:-1])
            if any(tok != "Mu" for tok in d1 + d2):
                raise ValueError(f"Hessian term not of Hadamard form: {r}")
            had.append((c, d1, d2))
    for c, t, _ in _basis_terms(d["d3S"]):
        r = _rotate_last(t, "Y")[:-1]
        L1, W, L3 = _split_two(r)
        src.append((c, tuple(L1), tuple(W), tuple(L3)))
    for c, t, _ in _basis_terms(readout()):
        rd.append((c, tuple(t)))
    for c, t, _ in _basis_terms(d["dbeta"]):
        i = t.index("X")
        slope.append((c, tuple(t[:i]), tuple(t[i + 1:])))
    for c, t, _ in _basis_terms(d["d2beta"]):
        L, W, R = _split_two(t)
        curv.append((c, tuple(L), tuple(W), tuple(R)))
    if len(low) != 1 or low[0][1] != ("Mu",):
        raise ValueError("the Hessian's low-rank part is not c b^T X diag(mu) X b")
    return Structured(*(_merge(x) for x in (grad, had, low, src, rd, slope, curv)),
                      first_order_weights())


def _merge(terms):
    """Collect equal token structures (coefficients added), in first-seen order."""
    out = {}
    for c, *toks in terms:
        key = tuple(toks)
        out[key] = out.get(key, 0) + c
    return tuple((sp.factor(c), *k) for k, c in out.items() if c != 0)


@dataclass(frozen=True)
class VarianceTerms:
    """The one loop of a test output's variance in the basis (docs/theory.md §2c), all scalar (traces):

    constant   c: the part of v(F) that holds no field;
    tree       (c, L): v(F) contains c tr(L);
    slope      (c, L): dv[X] = sum c tr(L X);
    curvature  (c, W, R): E d2v[X, X] = sum c tr(E[X W X] R), X ~ N(0, H^-1);
    spread     (c, W, R): E (p^T dbeta[X])^2 = sum c tr(E[X W X] R), the test mean's variance over the field.
    """

    constant: object
    tree: tuple
    slope: tuple
    curvature: tuple
    spread: tuple


def _quadratic(expr):
    """(c, W, R) terms of a trace form quadratic in X, rotated to tr(X W X R)."""
    out = []
    for c, t, _ in _basis_terms(expr):
        i = t.index("X")
        r = t[i:] + t[:i]
        j = r.index("X", 1)
        out.append((c, tuple(r[1:j]), tuple(r[j + 1:])))
    return out


@lru_cache(maxsize=None)
def variance_structured() -> VarianceTerms:
    d = variance_derivatives()
    v = sp.expand(d["v"])
    constant = sum((t for t in sp.Add.make_args(v) if not t.has(sp.Trace)), sp.S.Zero)
    tree = [(c, tuple(t)) for c, t, _ in _basis_terms(v - constant)]
    slope = [(c, tuple(_rotate_last(t, "X")[:-1])) for c, t, _ in _basis_terms(d["dv"])]
    return VarianceTerms(sp.factor(constant), *(_merge(x) for x in (tree, slope, _quadratic(d["d2v"]),
                                                                    _quadratic(d["spread"]))))
