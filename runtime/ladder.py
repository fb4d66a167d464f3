"""The chi ladder (docs/theory.md §5): one loop for every method.

Points are solved in the given order, each warm-started from the previous solution (the first
from the method's own start, the NNGP where a saddle is solved). A step that fails is retried
through geometric intermediate chi values when the method allows it; a point that still fails
ends the ladder and is recorded (the points before it are kept). A solution that changes by more
than half between nearby chi values is flagged as a possible branch jump. Each point reports its
own time: its solve, its share of the method's batched evaluation, and the set-up for the first.
With ``progress`` a bar counts the points solved and names the chi under way (a point of the
single-neuron Monte Carlo at P ~ 1000 takes a minute or more).

A method provides a solver with:
  ``solve(chi, warm)``   the state at chi (``warm`` is None for the first point); the state has
                         attributes ``chi`` and ``warnings`` (a list);
  ``warm(state)``        what the next point starts from;
  ``change(state, prev)`` the relative change of the solution between two points, or None;
  ``results(states)``    the Result objects of the converged states (batched where that pays);
                         the ladder adds each state's warnings to its result;
  ``retries``            how many times a failing step may be split (0: never);
  ``invalid(result)``    why a result the method computed cannot hold (a truncated series' negative
                         variance), or None: such a point fails as a non-finite one does.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from .errors import ConvergenceError
from .numerics.observe import RESCALE
from . import progress as _progress
from .progress import Progress
from .results import Result

#: relative change of the solution that counts as a possible branch jump ...
JUMP = 0.5
#: ... between chi values closer than this in ln chi
JUMP_LN_CHI = 0.7


@dataclass
class Point:
    """A solved ladder point for methods whose state is one value (a saddle, a set of moments)."""

    chi: float
    value: Any = None
    warnings: list = field(default_factory=list)


class Solver:
    """Defaults of the solver protocol: no retries, no warm start, no branch-jump measure."""

    retries = 0

    def warm(self, state):
        return None

    def change(self, state, prev):
        return None

    def invalid(self, result):
        return None


def relative_change(new, old) -> float:
    """|new - old| / |old| (Frobenius): the branch-jump measure of a vector or matrix solution."""
    return float(np.linalg.norm(new - old) / max(np.linalg.norm(old), 1e-300))


def solve(solver, chis, setup_seconds: float = 0.0, progress: bool = False) -> list[Result]:
    """Results along the ladder ``chis`` (a failed point, if any, last). NumPy's floating-point warnings are off:
    at the edge of float64 (chi ~ 1e300) they spilled on stderr, and what they warn of is judged here, a result
    that is not finite being a failed point."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        bar = Progress(len(chis), progress, "[bold]msat[/bold] chi ladder")
        try:
            return _solve(solver, chis, setup_seconds, bar)
        finally:
            _progress.show_status(None)
            bar.close()


def _solve(solver, chis, setup_seconds, bar):
    states, seconds, failure = [], [], None
    warm, prev = None, None
    for chi in chis:
        t0 = time.perf_counter()
        bar.describe(f"chi = {chi:g}")
        _progress.show_status(lambda what, chi=chi: bar.describe(f"chi = {chi:g}: {what}"))
        try:
            st = reach(solver, None if prev is None else prev.chi, warm, chi, solver.retries)
        except ConvergenceError as err:
            failure = Result.failed(chi, err)
            failure.seconds = time.perf_counter() - t0
            break
        bar.step(f"chi = {chi:g}")
        if prev is not None:
            jump = solver.change(st, prev)
            if jump is not None and jump > JUMP and abs(math.log(chi / prev.chi)) < JUMP_LN_CHI:
                st.warnings.append(f"solution changed by {jump:.0%} between chi = {prev.chi:g} and "
                                   f"{chi:g}: possible branch jump")
        seconds.append(time.perf_counter() - t0)
        states.append(st)
        warm, prev = solver.warm(st), st
    t0 = time.perf_counter()
    try:
        results = solver.results(states) if states else []
    except (ZeroDivisionError, OverflowError, FloatingPointError) as err:  # an audit: y x 1e70, loop, exit 1
        failure = Result.failed(states[0].chi, ConvergenceError(
            f"{type(err).__name__} while evaluating the results: the data or parameters are at the edge of "
            "float64; rescale them", {}))
        results = []
    share = (time.perf_counter() - t0) / max(len(results), 1)
    for r, st, s in zip(results, states, seconds):
        r.seconds = s + share
        r.warnings += st.warnings
    if results:
        results[0].seconds += setup_seconds
    for k, r in enumerate(results):  # a non-finite or impossible number is a failure, never a result
        why = (None if _finite(r) else "non-finite result: the data or parameters are at the edge of float64; "
               "rescale them") or solver.invalid(r) or _negative(r)
        if why:
            failure = Result.failed(r.chi, ConvergenceError(why, {}))
            failure.seconds = r.seconds  # its solve and its share of the batch were spent
            results = results[:k]
            break
    if failure is not None:
        results.append(failure)
    return results


def _negative(r: Result) -> str | None:
    """Why a point whose test variance is negative beyond round-off is no answer (an outside audit: targets 1e9
    times the prior's output scale gave linear kernel adaptation variances of -14.5, converged)."""
    v = np.asarray(r.test_var)
    if v.size and v.min() < -1e-9 * np.max(np.abs(v)):
        return (f"a test variance is negative ({v.min():.3g}): its terms cancelled to round-off, as targets far "
                "above the prior's output scale make them do; " + RESCALE)
    return None


def _finite(r: Result) -> bool:
    arrays = [r.train_mean, r.test_mean, r.test_var] + [v for v in (r.s_mean, r.s_var) if v is not None]
    return all(np.all(np.isfinite(a)) for a in arrays)


def reach(solver, chi_prev, warm, chi, depth):
    """Solve at chi from ``warm`` (the solution at chi_prev); on failure, through the geometric
    mid-point, up to ``depth`` times."""
    try:
        try:
            return solver.solve(chi, warm)
        except (ZeroDivisionError, OverflowError, FloatingPointError, np.linalg.LinAlgError) as err:
            raise ConvergenceError(f"numerical failure ({type(err).__name__}: {err}); the data or parameters "
                                   "are at the edge of float64: rescale them", {"chi": chi}) from None
    except ConvergenceError:
        if depth <= 0 or chi_prev is None:
            raise
    mid = math.sqrt(chi_prev * chi)
    st_mid = reach(solver, chi_prev, warm, mid, depth - 1)
    st = reach(solver, mid, solver.warm(st_mid), chi, depth - 1)
    st.warnings.append(f"reached chi = {chi:g} through intermediate chi = {mid:g}")
    return st


#: a cold start that fails even at chi = 1 (relu at depth: the first sweep's zero fields tilt a layer past its
#: draws, even at standard scaling for small kappa) starts at chi = 1 / COLD_DOWN^k, k up to COLD_TRIES
COLD_DOWN, COLD_TRIES = 4.0, 4


def annealed(solve, chi, warm_of, retries=0, tried=None, tries=COLD_TRIES):
    """A cold start reached along doublings of chi from 1 (or from the largest 1 / 4^k at which the zero fields
    are feasible; `tried`: a chi already found infeasible), each point warm-starting the next and split through its
    geometric mid-point up to `retries` times where it fails, as a ladder's steps are (docs/theory.md §5); the
    state says so in its warnings. `tries`: how many times the start is divided by COLD_DOWN at most."""
    start = top = min(chi, 1.0)
    for k in range(tries + 1):
        try:
            if start != tried:
                first = solve(start, None)
                break
        except ConvergenceError as err:
            if k == tries:  # say how far down the start went: far above the prior's output scale it must go far
                raise ConvergenceError(f"cold start: the zero fields fail at every chi tried from {top:.4g} down to "
                                       f"{start:.4g} ({tries + 1} starts), the last with: {err}",
                                       {**err.diagnostics, "lowest_start": start}) from None
        start /= COLD_DOWN
    n = int(np.ceil(np.log2(chi / start)))
    steps = [float(c) for c in np.geomspace(start, chi, n + 1)[1:-1]] + [chi] if n else []
    steps_solver, st = SimpleNamespace(solve=solve, warm=warm_of), first
    warm, before = warm_of(st), start
    for i, c in enumerate(steps):
        _progress.status(f"cold start annealed from chi = {start:.3g}, step {i + 1} of {len(steps)} (chi = {c:.3g})")
        try:
            st = reach(steps_solver, before, warm, c, retries)
        except ConvergenceError as err:  # say that this was a climb towards chi and where it stopped
            raise ConvergenceError(f"cold start annealed from chi = {start:.4g} towards {chi:.4g}: solved up to "
                                   f"chi = {before:.4g}, then {err}", {**err.diagnostics, "annealed_to": before}) \
                from None
        warm, before = warm_of(st), c
    st.warnings.append(f"annealed from chi = {start:.4g} in {len(steps)} step{'s' * (len(steps) != 1)}")
    return st
