"""Matrix calculus on SymPy matrix expressions: directional derivatives and gradients.

SymPy differentiates Trace, Inverse and products of MatrixSymbols but has no rule for the
log-determinant (``log(Determinant(M)).diff(M)`` returns 0 in SymPy 1.14). The actions of
docs/theory.md §2b/§2c are built from exactly these pieces, so this module supplies one small
differentiator, rule by rule, with the log-determinant as the class ``LogDet`` whose derivative is
Jacobi's formula d logdet M = tr(M^-1 dM):

  ``directional(expr, X, H)``  d/de expr(X + e H) at e = 0 (a matrix or scalar expression);
  ``tangent(expr, pairs)``     the sum of directional derivatives over several (X, H): a
                               Jacobian-vector product, with one solve per distinct matrix;
  ``gradient(expr, X)``        G with d expr = tr(G^T H) for all H (cyclic trace rotation);
  ``symmetric_gradient``       (G + G^T)/2, the gradient over symmetric matrices.

Higher directional derivatives (d2S[X, X], d3S[X, X, Y]) are repeated ``directional`` calls.
"""
from __future__ import annotations

import sympy as sp
from sympy.codegen.matrix_nodes import MatrixSolve
from sympy.matrices.expressions.matexpr import MatrixElement, MatrixExpr


class LogDet(sp.Function):
    """log det M of a square matrix expression M (a scalar)."""

    nargs = 1
    is_commutative = True

    @classmethod
    def eval(cls, M):
        if isinstance(M, sp.Identity):
            return sp.S.Zero
        if isinstance(M, sp.MatrixBase):  # an explicit matrix: evaluate
            return sp.log(M.det())
        return None

    def _latex(self, printer):
        return r"\log\det\left(%s\right)" % printer._print(self.args[0])

    def _sympystr(self, printer):
        return "logdet(%s)" % printer._print(self.args[0])


class _Lowered(MatrixExpr):
    """A matrix product with a cheaper evaluation than its expression: its value is ``doit()``'s form
    (``_value``), while derive.emit prints it as a call to a module helper of the same meaning."""

    def __new__(cls, *args):
        return sp.Basic.__new__(cls, *args)

    def doit(self, **hints):
        return self._value(*(a.doit(**hints) if hints.get("deep", True) else a for a in self.args))

    def _entry(self, i, j, **kwargs):
        return self.doit()._entry(i, j, **kwargs)

    def _sympystr(self, printer):
        return "%s(%s)" % (type(self).__name__, ", ".join(printer._print(a) for a in self.args))


class RowQuadratic(_Lowered):
    """The column of quadratic forms a_i^T S a_i over the rows a_i of A (S square): diag(A S A^T).
    Its value is the Hadamard form (A S o A) 1; emitted code evaluates it as one product with the upper
    triangle of S + S^T (diagonal halved), half the cost of A S (derive.emit)."""

    @property
    def shape(self):
        return (self.args[0].shape[0], sp.S.One)

    @staticmethod
    def _value(A, S):
        return sp.HadamardProduct(A * S, A) * sp.OneMatrix(A.shape[1], 1)

    def _latex(self, printer):
        A, S = (printer._print(a) for a in self.args)
        return r"\operatorname{diag}\left(%s %s %s^{T}\right)" % (A, S, A)


class WeightedGram(_Lowered):
    """A^T diag(c) A for a column c of row weights (any sign): symmetric. Its value is the product
    A^T (A o c 1^T); emitted code evaluates it as two symmetric rank-k updates, the rows of positive and
    of negative weight, half the multiplications of the product (derive.emit)."""

    @property
    def shape(self):
        return (self.args[0].shape[1], self.args[0].shape[1])

    @staticmethod
    def _value(A, c):
        return A.T * sp.HadamardProduct(A, c * sp.OneMatrix(1, A.shape[1]))

    def _latex(self, printer):
        A, c = (printer._print(a) for a in self.args)
        return r"%s^{T} \operatorname{diag}\left(%s\right) %s" % (A, c, A)


def _is_matrix(e) -> bool:
    return isinstance(e, MatrixExpr) or getattr(e, "is_Matrix", False)


def _zero_like(e):
    if _is_matrix(e):
        return sp.ZeroMatrix(*e.shape)
    return sp.S.Zero


def directional(expr, X, H):
    """d/de expr(X + e H) at e = 0, by the sum, product, inverse, solve, trace and logdet rules."""
    d = lambda e: directional(e, X, H)  # noqa: E731
    if expr == X:
        return H
    if not expr.has(X):
        return _zero_like(expr)
    if isinstance(expr, MatrixSolve):  # M^-1 B as a solve: d(M^-1 B) = M^-1 (dB - dM M^-1 B)
        M, B = expr.matrix, expr.vector
        return MatrixSolve(M, sp.MatAdd(d(B), -d(M) * expr).doit())
    if isinstance(expr, sp.MatAdd):
        return sp.MatAdd(*[d(a) for a in expr.args]).doit()
    if isinstance(expr, sp.MatMul):
        coeff, mats = expr.as_coeff_matrices()
        terms = []
        if coeff.has(X):
            terms.append(d(coeff) * sp.MatMul(*mats))
        for i, m in enumerate(mats):
            if m.has(X):
                terms.append(coeff * sp.MatMul(*(mats[:i] + [d(m)] + mats[i + 1:])))
        return sp.MatAdd(*terms).doit() if len(terms) > 1 else terms[0]
    if isinstance(expr, sp.Inverse) or (isinstance(expr, sp.MatPow) and expr.exp == -1):
        M = expr.args[0]
        return -sp.MatMul(M.I, d(M), M.I)
    if isinstance(expr, sp.Transpose):
        return sp.Transpose(d(expr.arg))
    if isinstance(expr, sp.Trace):
        return sp.Trace(d(expr.arg))
    if isinstance(expr, LogDet):
        M = expr.args[0]
        return sp.Trace(sp.MatMul(M.I, d(M)))
    if isinstance(expr, MatrixElement):
        return d(expr.parent)[expr.i, expr.j]
    # scalar algebra of scalar subexpressions (traces, logdets, elements): chain rule via a
    # placeholder symbol per matrix-valued subexpression
    if isinstance(expr, sp.Add):
        return sp.Add(*[d(a) for a in expr.args])
    if isinstance(expr, sp.Mul):
        out = []
        for i, a in enumerate(expr.args):
            if a.has(X):
                out.append(sp.Mul(*(expr.args[:i] + (d(a),) + expr.args[i + 1:])))
        return sp.Add(*out)
    if isinstance(expr, sp.Pow):
        base, ex = expr.args
        if ex.has(X):
            raise NotImplementedError("matrix-dependent exponent")
        return ex * base ** (ex - 1) * d(base)
    if isinstance(expr, sp.log):
        return d(expr.args[0]) / expr.args[0]
    raise NotImplementedError(f"no derivative rule for {type(expr).__name__}")


def tangent(expr, pairs):
    """sum_k d/de expr(X_k + e H_k) at e = 0 (the Jacobian of expr applied to (H_1, ..., H_k)), with the
    terms M^-1 B_i of one matrix M merged into a single solve M^-1 (sum_i B_i)."""
    out = sp.MatAdd(*[directional(expr, X, H) for X, H in pairs]).doit()
    terms = out.args if isinstance(out, sp.MatAdd) else (out,)
    solves, rest = {}, []
    for t in terms:
        coeff, mats = t.as_coeff_matrices() if isinstance(t, sp.MatMul) else (sp.S.One, [t])
        if len(mats) == 1 and isinstance(mats[0], MatrixSolve):
            solves.setdefault(mats[0].matrix, []).append(coeff * mats[0].vector)
        else:
            rest.append(t)
    merged = [MatrixSolve(M, sp.MatAdd(*Bs).doit()) for M, Bs in solves.items()]
    return sp.MatAdd(*(merged + rest)).doit() if len(merged) + len(rest) > 1 else (merged + rest)[0]


def trace_terms(expr):
    """Split a scalar expression linear in H into (coefficient, matrix product) pairs: each term
    is coefficient * tr(product) (1x1 products count as their trace)."""
    expr = sp.expand(expr)
    out = []
    for term in sp.Add.make_args(expr):
        coeff, rest = sp.S.One, []
        for f in sp.Mul.make_args(term):
            if isinstance(f, sp.Trace):
                rest.append(f.arg)
            elif isinstance(f, MatrixElement):
                rest.append(f.parent)
            else:
                coeff *= f
        if len(rest) != 1:
            raise ValueError(f"term is not linear in one trace: {term}")
        prod = sp.expand(rest[0])
        for t in sp.MatAdd.make_args(prod) if isinstance(prod, sp.MatAdd) else [prod]:
            c, mats = t.as_coeff_matrices() if isinstance(t, sp.MatMul) else (sp.S.One, [t])
            out.append((coeff * c, list(mats)))
    return out


def gradient(expr, X):
    """G with d expr[H] = tr(G^T H): rotate each trace so that H stands last."""
    H = sp.MatrixSymbol("H_" + str(X), *X.shape)
    dexpr = directional(expr, X, H)
    grads = []
    for coeff, mats in trace_terms(dexpr):
        flat = []
        for m in mats:
            flat.extend(m.args if isinstance(m, sp.MatMul) else [m])
        if flat.count(H) + sum(1 for m in flat if isinstance(m, sp.Transpose) and m.arg == H) != 1:
            raise ValueError("term not linear in H")
        if H in flat:
            i = flat.index(H)
            rotated = flat[i + 1:] + flat[:i]  # tr(A H B) = tr(B A H)
            G = sp.Transpose(sp.MatMul(*rotated)) if rotated else sp.Identity(X.shape[0])
        else:
            i = next(k for k, m in enumerate(flat) if isinstance(m, sp.Transpose) and m.arg == H)
            rotated = flat[i + 1:] + flat[:i]  # tr(A H^T B) = tr(H B A)^T... = tr((B A) H^T)
            G = sp.MatMul(*rotated) if rotated else sp.Identity(X.shape[0])
        grads.append(coeff * G)
    return sp.MatAdd(*grads).doit() if len(grads) > 1 else grads[0]


def symmetric_gradient(expr, X):
    """Gradient over symmetric matrices: (G + G^T)/2."""
    G = gradient(expr, X)
    return ((G + G.T) / 2).doit()
