"""How far a loop series' truncation lies from its sum (docs/theory.md §3): the size of the next term.

The loop series is asymptotic in 1/N with coefficients that grow with P; its order-(L+1) term of the test means
tracks the error of the order-L truncation against the exact integral closely (one layer, Ising and teacher
tasks, P/N = 0.1..4, chi = 1 and N: the two agree within a factor of 2 wherever the error exceeds 1e-3). Where
order L + 1 is not generated, the order-L term itself stands in: the error of order L - 1, an overestimate.
"""
from __future__ import annotations

import numpy as np

from msat import generated

from . import observe

#: a term above this fraction of the test means' largest value carries a warning (order 0 at chi = 1 crosses
#: it near P/N = 0.7 on the Ising task)
WARN = 0.1


def next_order(order: int):
    """L + 1 if its loop modules are generated, else None."""
    return order + 1 if order + 1 <= generated.MAX_ORDER else None


def relative_terms(spec, nodes, chis, kappa, g_v, weights, order: int, sums):
    """max_t |term_t| / max_t |sum_t| per ladder point: the test means' coefficient of `order` from the loop weights
    (J, L + 1, n) of a series generated to at least that order, at its saddles `nodes` (s, or u at depth), against
    the truncated sums (J, P*). NaN where there are no test points or their sums vanish."""
    tab = observe.Tables(spec, nodes, chis, kappa, g_v, order)
    n = tab.test.shape[1]
    term = observe.test_mean(spec, np.einsum("jn,jnk->jk", weights[:, order, :n], tab.test))
    scale = np.max(np.abs(sums), axis=1, initial=0.0)
    top = np.max(np.abs(term), axis=1, initial=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, top / np.where(scale > 0, scale, 1.0), np.nan)


def warning(ratio: float, order: int, P: int, N: int, own: bool):
    """The line a point carries where its series' next (or, `own`, last) term is large, else None."""
    if not ratio > WARN:
        return None
    if own:
        return (f"the loop series' last term (order {order}) is {ratio:.0%} of the test means: the series converges "
                f"slowly here (P/N = {P / N:.2g}) and order {order}'s truncation error can be a good part of that; "
                "--method exact is the exact answer")
    return (f"the loop series' next term (order {order + 1}) is {ratio:.0%} of the test means: order {order}'s "
            f"truncation error is about that large here (P/N = {P / N:.2g}); a higher --order, or --method exact "
            "(the exact answer)")
