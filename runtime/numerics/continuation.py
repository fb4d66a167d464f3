"""The continuation of the single-neuron saddle in chi on fixed draws (docs/theory.md §5, §6): from a solved
point to one its draws cannot reach at once, through intermediate chi, each start predicted by the secant
through the last two saddles."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConvergenceError
from ..progress import within
from .modes import MissedModeError, check_modes
from .reweighted_saddle import reweighted_saddle

#: steps of the continuation in chi from a warm start the fixed draws cannot reach the saddle from at once
CONTINUATION_STEPS = 40
#: ... each at least this long in log chi (a factor 1.01)
MIN_LOG_STEP = 0.01
#: a step's start is scaled by at most this factor to bring its field inside the normalisable region
INFLATE_MAX = 2.0
#: what a relu continuation that stopped can and cannot say: its steps' saddles, solved on fewer draws, read the
#: boundary nearer than it is (an outside audit, P = 6, D = 2: tilt/prior 0.97-0.99 where its own quadrature of q
#: gives 0.92-0.93, the saddle existing up to chi = 1 and a ladder of closer points reaching it on some seeds)
RELU_EDGE = (". The saddle may not exist past it, or the draws may not hold q there; the tilt/prior above, of a "
             "step's cheaper saddle, can overstate how near the boundary is: a ladder of closer chi, another "
             "--seed or more --mc-samples may pass (docs/theory.md §6)")
#: a cold start below chi = 1 looks this many factors of the annealing ratio down for a normalisable start
COLD_TRIES = 60


def cold_start_ladder(saddle, chi, ratio):
    """The chi a cold start at chi climbs through, each warm-starting the next (docs/theory.md §5): none
    where the NNGP kernel's field at chi leaves q(w) normalisable; else from chi = 1 up in steps of at
    most `ratio` where it does so at 1, and otherwise from the largest chi / ratio^k (k >= 1, below 1
    and chi) where it does (a small width makes even chi = 1 tilt q past normalisability while a saddle
    exists there, reached from below). Empty where no such start exists: the solve at chi says why."""
    def cold(c):
        try:
            return saddle.normalisable(saddle.field(saddle.Kphi, c)[2])[0]
        except ConvergenceError:
            return False

    if cold(chi):
        return []
    if chi > 1 and cold(1.0):
        start = 1.0
    else:
        start = min(chi, 1.0)
        for _ in range(COLD_TRIES):
            start /= ratio
            if cold(start):
                break
        else:
            return []
    n = max(int(math.ceil(math.log(chi / start) / math.log(ratio))), 1)
    return [float(c) for c in np.geomspace(start, chi, n + 1)[:-1]]


def continue_saddle(saddle, chi_from, C, chi_to, max_steps=CONTINUATION_STEPS):
    """The saddle at chi_to from the one at chi_from (C) on fixed draws, in geometric steps: each the
    largest (up to the rest of the way) at which the field of the C reached is still normalisable,
    since a start whose law q(w) does not exist is out of the draws' reach whatever the draws, and
    halved (in log chi) where the fixed draws still do not reach the saddle."""
    chi, step = chi_from, math.log(chi_to / chi_from)
    before = saddle._solved[-2] if len(saddle._solved) > 1 and saddle._solved[-1][0] == chi_from else None
    for k in range(max_steps):
        step = math.copysign(min(abs(step), abs(math.log(chi_to / chi))), step)
        while abs(step) > MIN_LOG_STEP and not saddle.normalisable(saddle.field(C, chi * math.exp(step))[2])[0]:
            step /= 2
        target = chi_to if abs(math.log(chi_to / chi)) <= abs(step) else chi * math.exp(step)
        try:
            start = inside(saddle, predicted(saddle, before, chi, C, target), target, chi, C)
            with within(f"continued from chi = {chi_from:.3g}, step {k + 1} at chi = {target:.4g}"):
                C_to = reweighted_saddle(saddle, target, start,
                                         max(saddle.n_fixed // 4, 500), saddle.seed + 7, errors=False).C
        except MissedModeError:
            raise
        except ConvergenceError as err:
            step /= 2
            if abs(step) <= MIN_LOG_STEP:
                why = f"its step to chi = {target:.4g} failed ({str(err).split(': ', 1)[-1]})"
                raise _stopped(saddle, chi_from, chi, C, chi_to, why, target) from None
            continue
        check_modes(saddle, C_to, saddle.field(C_to, target)[2], target)  # past a missed mode it only crawls on
        if target == chi_to:
            return C_to
        before, chi, C, step = (chi, C), target, C_to, 2 * step  # a step that worked: try a longer one next
    raise _stopped(saddle, chi_from, chi, C, chi_to, f"the continuation in chi needs more than {max_steps} steps")


class ContinuationStopped(ConvergenceError):
    """The continuation stopped short of its target (out of steps, or a step that failed however short):
    `chi` in the diagnostics is the last saddle it reached, `tilt_prior` that saddle's (relu near the
    normalisability boundary, where the saddles' noise keeps the steps short), `failed_at` the step's chi."""


def _stopped(saddle, chi_from, chi, C, chi_to, why, failed_at=None):
    ratio = saddle.normalisable(saddle.field(C, chi)[2])[1]  # 0 for bounded phi (erf): q always exists
    near = f"; tilt/prior {ratio:.3g} at the last saddle reached" if ratio > 0 else ""
    return ContinuationStopped(f"adaptive: {why}{near}",
                               {"chi_from": chi_from, "chi": chi, "target": chi_to, "tilt_prior": ratio,
                                "failed_at": failed_at})


def inside(saddle, start, target, chi, C):
    """start, or where its field at target is not normalisable the least multiple s start (1 < s <=
    INFLATE_MAX) whose field at target is no closer to the boundary than the saddle C at chi is (tilt/prior):
    near the end of relu's saddle (tilt/prior ~ 0.95 to 0.99) the noise of a step's saddle alone can put the
    next start past the boundary, where no step however short can begin, though the saddle ahead exists. A
    larger kernel weakens the field (A and alpha shrink), and the locating stages move C back to the saddle."""
    def ratio(s):
        return saddle.normalisable(saddle.field(s * start, target)[2])[1]

    if ratio(1.0) < 1.0:
        return start
    bound = saddle.normalisable(saddle.field(C, chi)[2])[1]
    lo, hi = 0.0, math.log(INFLATE_MAX)
    if not ratio(math.exp(hi)) <= bound:
        return start
    for _ in range(12):  # to a factor 2^(1/4096) of the least scale
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if ratio(math.exp(mid)) <= bound else (mid, hi)
    return math.exp(hi) * start


def predicted(saddle, before, chi, C, target):
    """The start at target: the secant through the saddles at before = (chi_b, C_b) and (chi, C), linear in
    log chi (the saddle moves far along a continuation near mean-field scaling, and Newton's model on
    the draws reaches less far than the path's tangent), extrapolating at most twice the secant's own
    length; C itself without a secant, or where the extrapolated field is not valid."""
    if before is None or before[0] == chi:
        return C
    t = math.log(target / chi) / math.log(chi / before[0])
    if not 0 < t <= 2:
        return C
    guess = C + t * (C - before[1])
    try:
        return guess if saddle.normalisable(saddle.field(guess, target)[2])[0] else C
    except ConvergenceError:
        return C
