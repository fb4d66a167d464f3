"""Index notation for structured matrix formulas (docs/theory.md §2c).

A formula is a sum of Terms: a SymPy coefficient times a product of arrays carrying named indices
and Kronecker deltas; every index that is not free is summed over. ``simplify`` eliminates the
deltas (a summed index takes the value of its partner), brings the summation indices into a
canonical order and adds equal terms; ``numpy_lines`` prints the result as pairwise contractions
(matrix products through BLAS, Hadamard products, broadcasts), cheapest pair first and never an
intermediate with more than two indices, so a formula that costs O(n^3) stays O(n^3).

Arrays are written ``A("Lh", "i", "j")``; ``delta("i", "k")``; products ``mul(a, b, ...)`` and
sums ``add(a, b)`` of formulas (lists of Terms); ``scale(c, a)`` multiplies by a SymPy scalar.
Indices made with ``dummy()`` are fresh, so that a formula can be used inside another without
clashing names.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy as sp

_counter = itertools.count()


@dataclass(frozen=True)
class Term:
    coeff: sp.Expr
    factors: tuple  # ((array name, (index, ...)), ...)
    deltas: tuple = ()  # ((index, index), ...)


def A(name: str, *idx: str) -> list:
    return [Term(sp.S.One, ((name, tuple(idx)),))]


def delta(i: str, j: str) -> list:
    return [Term(sp.S.One, (), ((i, j),))]


def dummy(stem: str = "d") -> str:
    return f"_{stem}{next(_counter)}"


def scale(c, expr: list) -> list:
    return [Term(sp.sympify(c) * t.coeff, t.factors, t.deltas) for t in expr]


def add(*exprs: list) -> list:
    return [t for e in exprs for t in e]


def mul(*exprs: list) -> list:
    out = [Term(sp.S.One, (), ())]
    for e in exprs:
        out = [Term(a.coeff * b.coeff, a.factors + b.factors, a.deltas + b.deltas) for a in out for b in e]
    return out


def _rename(term: Term, old: str, new: str) -> Term:
    f = tuple((n, tuple(new if i == old else i for i in idx)) for n, idx in term.factors)
    d = tuple(tuple(new if i == old else i for i in pair) for pair in term.deltas)
    return Term(term.coeff, f, d)


def _eliminate(term: Term, free: tuple, dim) -> Term:
    """Remove every delta with a summed index; a delta between two free indices stays."""
    while True:
        for k, (a, b) in enumerate(term.deltas):
            rest = term.deltas[:k] + term.deltas[k + 1:]
            if a == b:  # delta_aa = 1; a summed index that appears nowhere else sums to dim
                t = Term(term.coeff, term.factors, rest)
                used = {i for _, idx in t.factors for i in idx} | {i for p in rest for i in p}
                if a not in free and a not in used:
                    t = Term(t.coeff * dim, t.factors, t.deltas)
                term = t
                break
            if a not in free or b not in free:
                old, new = (a, b) if a not in free else (b, a)
                term = _rename(Term(term.coeff, term.factors, rest), old, new)
                break
        else:
            return term


def _canonical(term: Term, free: tuple) -> Term:
    """Rename the summation indices s0, s1, ... in the order that makes the term smallest."""
    dummies = sorted({i for _, idx in term.factors for i in idx} - set(free))
    best = None
    for perm in itertools.permutations(range(len(dummies))):
        t = term
        for k, d in enumerate(dummies):
            t = _rename(t, d, f"#{perm[k]}")
        for k in range(len(dummies)):
            t = _rename(t, f"#{k}", f"s{k}")
        key = (tuple(sorted(t.factors)), tuple(sorted(tuple(sorted(p)) for p in t.deltas)))
        if best is None or key < best[0]:
            best = (key, Term(t.coeff, key[0], key[1]))
    return best[1]


def simplify(expr: list, free: tuple, dim=sp.Symbol("n")) -> list:
    """Deltas eliminated, summation indices canonical, equal terms added, zero terms dropped."""
    acc: dict = {}
    for t in expr:
        t = _canonical(_eliminate(t, free, dim), free)
        key = (t.factors, t.deltas)
        acc[key] = acc.get(key, sp.S.Zero) + t.coeff
    return [Term(sp.factor(c), f, d) for (f, d), c in acc.items() if sp.simplify(c) != 0]


def collect(expr: list, unknown: str) -> tuple[list, list]:
    """Split a formula linear in the array ``unknown`` into (terms with it, terms without)."""
    with_u = [t for t in expr if any(n == unknown for n, _ in t.factors)]
    return with_u, [t for t in expr if t not in with_u]


def operator(expr: list, unknown: str, col: str) -> list:
    """The matrix M[free..., col] of a formula linear in a vector ``unknown``: f_i = M_iq u_q."""
    out = []
    for t in expr:
        (k, (name, (j,))), = [(k, f) for k, f in enumerate(t.factors) if f[0] == unknown]
        rest = t.factors[:k] + t.factors[k + 1:]
        out.append(Term(t.coeff, rest, t.deltas + ((j, col),)))
    return out


def _pair(x, y, keep):
    """Code and indices of the contraction of two operands (code, indices) keeping ``keep``."""
    (cx, ix), (cy, iy) = x, y
    out = tuple(i for i in dict.fromkeys(ix + iy) if i in keep)
    if len(ix) == 2 and len(iy) == 2 and set(ix) == set(iy) and set(out) == set(ix):
        return f"({cx} * {cy if iy == ix else cy + '.T'})", ix  # Hadamard
    if len(ix) == 2 and len(iy) == 2 and len(out) == 2 and len(set(ix) & set(iy)) == 1:
        s, = set(ix) & set(iy)
        a = cx if ix[1] == s else f"{cx}.T"
        b = cy if iy[0] == s else f"{cy}.T"
        return f"({a} @ {b})", (ix[0] if ix[1] == s else ix[1], iy[1] if iy[0] == s else iy[0])
    if len(ix) == 1 and len(iy) == 2:
        (cx, ix), (cy, iy) = y, x
    if len(ix) == 2 and len(iy) == 1:
        v, = iy
        if v in out:  # scale rows or columns
            return (f"({cx} * {cy}[None, :])" if ix[1] == v else f"({cx} * {cy}[:, None])"), ix
        return (f"({cx} @ {cy})" if ix[1] == v else f"({cy} @ {cx})"), (ix[0] if ix[1] == v else ix[1],)
    if len(ix) == 1 and len(iy) == 1:
        if ix == iy:
            return (f"({cx} * {cy})", ix) if out else (f"({cx} @ {cy})", ())
        return f"numpy.outer({cx}, {cy})", ix + iy
    letter = {i: "abcdefgh"[k] for k, i in enumerate(dict.fromkeys(ix + iy))}
    subs = "".join(map(letter.get, ix)) + "," + "".join(map(letter.get, iy)) + "->" + "".join(map(letter.get, out))
    return f'numpy.einsum("{subs}", {cx}, {cy}, optimize=True)', out


def _contract(ops, free, temps):
    """Greedy pairwise contraction: cheapest pair first (n^(distinct indices)), pairs that share an
    index before outer products, intermediates of at most two indices; an operand with a repeated
    index is its diagonal. Every intermediate is a temporary of ``temps`` ({code: name}), so that
    terms sharing a product compute it once."""
    def temp(c):
        return temps.setdefault(c, f"t{len(temps)}")

    ops = [((temp(f"numpy.diagonal({c})"), (idx[0],)) if len(idx) == 2 and idx[0] == idx[1] else (c, idx))
           for c, idx in ops]
    while len(ops) > 1:
        best = None
        pairs = [(a, b) for a, b in itertools.combinations(range(len(ops)), 2) if set(ops[a][1]) & set(ops[b][1])]
        for a, b in pairs or itertools.combinations(range(len(ops)), 2):
            others = [i for k, (_, idx) in enumerate(ops) if k not in (a, b) for i in idx]
            union = set(ops[a][1]) | set(ops[b][1])
            keep = {i for i in union if i in free or i in others}
            if len(keep) <= 2 and (best is None or len(union) < best[0]):
                best = (len(union), a, b, keep)
        if best is None:
            raise ValueError("no contraction order keeps intermediates at two indices")
        _, a, b, keep = best
        c, idx = _pair(ops[a], ops[b], keep)
        ops = [op for k, op in enumerate(ops) if k not in (a, b)] + [(temp(c), idx)]
    return ops[0]


def numpy_lines(exprs: dict, names: dict, code) -> list[str]:
    """NumPy statements computing simplified formulas, ``exprs`` = {target: (formula, free indices)}:
    pairwise matrix products (BLAS), Hadamard products and broadcasts, shared intermediates computed
    once; a delta between the two free indices is a diagonal matrix. ``names`` maps array names to
    code, ``code`` prints a SymPy coefficient."""
    temps, finals = {}, []
    for target, (expr, free) in exprs.items():
        parts = []
        for t in expr:
            ops = [(names[n], idx) for n, idx in t.factors]
            if t.deltas:  # delta_il times a formula of i alone: a diagonal matrix
                (i, l), = t.deltas
                ops = [(c, tuple(i if j == l else j for j in idx)) for c, idx in ops]
                body = "numpy.eye(n)" if not ops else f"numpy.diag({_finish(_contract(ops, (i,), temps), (i,))})"
            else:
                body = _finish(_contract(ops, free, temps), free)
            parts.append(body if t.coeff == 1 else f"({code(t.coeff)}) * {body}")
        finals.append(f"{target} = {' + '.join(parts) if parts else '0.0'}")
    return [f"{name} = {c}" for c, name in temps.items()] + finals


def _finish(op, free):
    c, idx = op
    if tuple(idx) == tuple(free):
        return c
    if len(free) == 2 and tuple(idx) == tuple(free[::-1]):
        return f"{c}.T"
    raise ValueError(f"contraction ended with indices {idx}, not {free}")
