"""The single-neuron saddle's draw sets solved alone (their spread: the Monte Carlo error) and, with the union
of them, solved again until no stop moves an output by a tenth of the error it is measured against
(numerics.reweighted_saddle, numerics.mixture_saddle; docs/theory.md §6).

The solves on draws stop at a relative residual of 1e-3 / sqrt(M), which can be far above the real error
(quasi-random draws with a control variate), and where the fixed point is ill-conditioned a small residual is
a large error. A stop's error shows in the outputs (train and test means, test variances) where the draws'
errors cancel (c** against C*^T A C*, drawn together) while the stop's do not: a union stopped a hundredth of
C's error away moved relu test variances by up to 75 MCSE (D = 1, kappa = 0.01), and sets stopped a hundredth
of their shift away spread 70 times more in them than solved to the floor. So every solve is redone, to a
tenth of its residual, until that moves no output by a tenth of its error: the union's against its MCSE, a
set's against the sets' scatter (the spread of one set)."""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from ..errors import ConvergenceError
from ..progress import status

#: rounds at most of solving the union and each set again, each to a tenth of its residual before
REFINES = 4
#: ... until none moved an output by more than this fraction of its error
STILL = 0.1


class Solves(NamedTuple):
    """How numerics.reweighted_saddle solves on draws: `on` (its _solve_on, leaving the residuals reached in
    on.residuals), `below_noise` (the noise bound a set of draws is solved to), `resolve` (a set's aim, as a
    fraction of its start's residual) and `floor` (the finest relative residual asked)."""
    on: Callable
    below_noise: Callable
    resolve: float
    floor: float


def solve_sets(saddle, chi, C, sets, Ct0, tol, rs: Solves):
    """[(C, C*, c**), its draws, its residual] of each draw set solved alone from the union's C, each to a
    hundredth of its own distance from it at least (those that fail are left out)."""
    held = []
    for d in sets:
        Cr, Csr, cssr, _, _, ok = rs.on(saddle, chi, C, d, Ct0, rs.below_noise(tol, d), resolve=rs.resolve)
        res = float(rs.on.residuals[1])
        if ok or res <= rs.below_noise(tol, d):  # the finer aim missed, the old bound held
            held.append([(Cr, Csr, cssr), d, res])
    if len(held) < 2:
        raise ConvergenceError("adaptive: the single-neuron fixed point fails on the separate draw sets "
                               "(too few draws for its Monte Carlo error: raise --mc-samples)", {"chi": chi})
    return held


def settle(saddle, chi, solved, union, stop, sets, Ct0, tol, rs: Solves, errors=True):
    """((C, C*, c**, effective fraction) of the union, [(C, C*, c**) of each set], settled, [outputs of each set]):
    the union solved (to the relative residual `stop`) and the sets solved alone, then all of them solved again,
    each to a tenth of its residual, in rounds until the union is solved to a hundredth of the sets' relative spread
    of C and no solve of the round moved an output by more than STILL of its error (the union's outputs against
    their MCSE, a set's against the sets' scatter); at most REFINES rounds. The first round solves the union and one
    set again, and the other sets only where either moved. `settled` is False where the rounds ran out or a finer
    solve failed: the stops' errors may then exceed the errors reported. Without `errors` the sets are not solved (a
    step of a continuation needs only C)."""
    if not errors:
        return solved, [], True, []
    status(f"{len(sets)} sets alone (Monte Carlo errors)")
    held = solve_sets(saddle, chi, solved[0], sets, Ct0, tol, rs)
    R, Cu = len(held), solved[0]
    aim = rs.resolve * math.sqrt(sum(float(np.linalg.norm(h[0][0] - Cu)) ** 2 for h in held)) / R
    aim /= max(float(np.linalg.norm(Cu)), 1e-300)
    parts = [[solved, union, min(float(stop), rs.below_noise(tol, union))]] + held
    outs = [saddle._outputs(*p[0][:3], chi) for p in parts]
    failed, still = False, False
    for n in range(REFINES):
        scatter = {k: np.array([o[k] for o in outs[1:]]).std(axis=0, ddof=1) for k in outs[0]}
        still = True
        for i, part in enumerate(parts):
            if i == 2 and n == 0 and still:
                break  # the sets stop alike (from the union's C, to a hundredth of their shift): one speaks for all
            finer = max(rs.floor, min(aim, part[2] / 10) if i == 0 else part[2] / 10)
            if finer >= part[2]:
                continue
            C2, Cs2, css2, _, frac2, done = rs.on(saddle, chi, part[0][0], part[1], Ct0, finer)
            if not done:
                failed = True  # kept as it was: finer solves of these draws fail
                continue
            then = saddle._outputs(C2, Cs2, css2, chi)
            unit = 1.0 / math.sqrt(R) if i == 0 else 1.0  # the union's error is the mean's: scatter / sqrt(R)
            # the solve before was off by about what this one moved; this one by a tenth of that
            moved = max((float(np.max(np.abs(then[k] - outs[i][k]) / np.maximum(unit * scatter[k], 1e-300)))
                         for k in then if then[k].size), default=0.0)  # no test points: train means only
            part[0] = (C2, Cs2, css2, frac2) if i == 0 else (C2, Cs2, css2)
            part[2], outs[i] = min(finer, float(rs.on.residuals[1])), then
            still = still and moved <= STILL and (i > 0 or finer <= aim)
        if still:
            break
    return parts[0][0], [p[0] for p in parts[1:]], still and not failed, outs[1:]
