"""LaTeX printing settings shared by every `msat latex` page (derive.latex, derive.latex_deep): fixed,
so that the printed formulas change only when the derivation does."""
from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import log1p

LATEX_SETTINGS = {"fold_short_frac": False, "mul_symbol": None, "order": "lex"}


def tex(expr, names=None) -> str:
    if isinstance(expr, sp.Basic):  # log1p keeps the emitted code accurate; a reader writes log(1 + x)
        expr = expr.replace(lambda e: isinstance(e, log1p), lambda e: sp.log(1 + e.args[0]))
    # SymPy prints a matrix sum with a negative term as "a + - b"
    return sp.latex(expr, symbol_names=names or {}, **LATEX_SETTINGS).replace("+ -", "-")
