"""Derivative tensors of trace formulas as einsum contractions (docs/theory.md §2e).

A scalar that matcalc differentiates k times along placeholder directions X_1..X_k is a sum of
terms coeff * tr(M_1 M_2 ... M_r) (matcalc.trace_terms) in which each X_j appears once, possibly
transposed. Its derivative tensor T[i1, j1, ..., ik, jk] = d^k / dX_1[i1, j1] ... dX_k[ik, jk] is
the same product with every X_j cut out, its two indices left free: for tr(S1 X S2 Y),
T[i, j, k, l] = S1[l, i] S2[j, k]. ``einsum_term`` writes that as numpy.einsum subscripts and
operands: the segments between placeholders, split wherever they pass through a vector (so that
a y y^T never becomes a P x P outer product), a selector row e^T (a unit vector standing for a free
output index), and optional extra operands that contract pairs of placeholders (a metric G on the
field's coordinates) instead of leaving them free.
"""
from __future__ import annotations

import string

import sympy as sp

from .emit import numpy_code


def _dim_is_one(d) -> bool:
    return d == 1


def _atoms(segment):
    """Split a product into factors whose products keep a dimension > 1 inside (no outer products)."""
    atoms, cur = [], []
    for m in segment:
        cur.append(m)
        if _dim_is_one(m.shape[1]):  # a column vector (or scalar) ends a rank-1 piece
            atoms.append(cur)
            cur = []
    if cur:
        atoms.append(cur)
    return atoms


def einsum_term(coeff, mats, placeholders, selector=None, contract=()):
    """(coeff, subscripts, [operand code]) of one trace term's derivative tensor.

    placeholders: the MatrixSymbols cut out, in the order of the output's index pairs. selector: a
    MatrixSymbol column e; e^T (or e) in the product becomes the free leading output index (all of them
    the same index when it occurs more than once: e^T M e is the diagonal of M).
    contract: ((name, (X_a, X_b)), ...): an operand `name` with four indices (row, col of X_a, row,
    col of X_b) summed against the tensor, those placeholders' indices leaving the output."""
    letters = iter(string.ascii_letters)
    items = []  # ("op", product) | ("ph", symbol, transposed) | ("sel", e or e^T)
    segment = []

    def flush():
        for atom in _atoms(segment):
            prod = sp.MatMul(*atom).doit() if len(atom) > 1 else atom[0]
            items.append(("op", prod))
        segment.clear()

    for m in mats:
        base = m.arg if isinstance(m, sp.Transpose) else m
        if base in placeholders:
            flush()
            items.append(("ph", base, isinstance(m, sp.Transpose)))
        elif selector is not None and base == selector:
            flush()
            items.append(("sel", m))
        else:
            segment.append(m)
    flush()

    def cols(it):
        if it[0] in ("op", "sel"):
            return it[1].shape[1]
        return it[1].shape[0] if it[2] else it[1].shape[1]

    # two placeholders (or a placeholder and the selector) side by side share an index: an identity
    # between them keeps every output index distinct
    spaced = []
    for k, it in enumerate(items):
        spaced.append(it)
        nxt = items[(k + 1) % len(items)]
        if it[0] != "op" and nxt[0] != "op" and not _dim_is_one(cols(it)):
            spaced.append(("op", sp.Identity(cols(it))))
    items = spaced
    # the index between consecutive items (cyclic); None where the shared dimension is 1
    n = len(items)

    links = []
    for k in range(n):
        links.append(None if _dim_is_one(cols(items[k])) else next(letters))
    operands, subs, sel, ph_idx = [], [], [], {}
    for k, it in enumerate(items):
        left, right = links[k - 1], links[k]
        if it[0] == "op":
            idx = "".join(x for x in (left, right) if x is not None)
            text = numpy_code(it[1])
            operands.append(f"numpy.ravel({text})" if 1 in it[1].shape else text)
            subs.append(idx)
        elif it[0] == "sel":
            sel.append(left if left is not None else right)
            if sel[-1] is None:
                raise ValueError("a selector needs a matrix index next to it")
        else:
            if left is None or right is None:
                raise ValueError("a placeholder next to a vector boundary")
            ph_idx[it[1]] = (right, left) if it[2] else (left, right)
    free = sel[0] if sel else None
    for extra in sel[1:]:  # e^T M e: every selector stands for the same output index (a diagonal)
        subs = [x.replace(extra, free) for x in subs]
    for ph in placeholders:
        if ph not in ph_idx:
            raise ValueError(f"placeholder {ph} not in the term")
    contracted = set()
    for name, (a, b) in contract:
        operands.append(name)
        subs.append("".join(ph_idx[a] + ph_idx[b]))
        contracted |= {a, b}
    out = (free or "") + "".join("".join(ph_idx[p]) for p in placeholders if p not in contracted)
    if len(set(out)) != len(out):
        raise ValueError("adjacent placeholders share an index (a delta in the output)")
    return coeff, ",".join(subs) + "->" + out, operands


def einsum_lines(target, terms, placeholders, selector=None, contract=(), shape=None):
    """NumPy lines summing the einsum of every term into `target` (numpy.einsum with optimize)."""
    lines = [f"{target} = 0.0"]
    for coeff, mats in terms:
        c, subs, ops = einsum_term(coeff, mats, placeholders, selector, contract)
        lines.append(f"{target} = {target} + ({numpy_code(c)}) * numpy.einsum({subs!r}, {', '.join(ops)}, "
                     f"optimize=True)")
    return lines
