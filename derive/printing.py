"""LaTeX printing settings shared by every `msat latex` page (derive.latex, derive.latex_deep): fixed,
so that the printed formulas change only when the derivation does."""
from __future__ import annotations

import sympy as sp

LATEX_SETTINGS = {"fold_short_frac": False, "mul_symbol": None, "order": "lex"}


def tex(expr, names=None) -> str:
    return sp.latex(expr, symbol_names=names or {}, **LATEX_SETTINGS)
