"""The one chi ladder (runtime.ladder, docs/theory.md §5) with a scripted solver: warm starts in
ladder order, retries through geometric intermediate chi, branch-jump warnings, a failing point
recorded with the points before it kept, and each point's own time."""
import math
import time

import numpy as np
import pytest

from msat.runtime import ladder, params
from msat.runtime.errors import ConvergenceError
from msat.runtime.results import Result

PARAMS = params.build(3, 2, 1, N=100, kappa=0.5, method="nngp")


class Scripted(ladder.Solver):
    """Solution x(chi) = chi (or a jump); fails where told; sleeps a given time per chi."""

    def __init__(self, fail=(), jump_at=None, retries=0, sleep=None):
        self.fail, self.jump_at, self.retries, self.sleep = set(fail), jump_at, retries, sleep or {}
        self.calls = []

    def solve(self, chi, warm):
        self.calls.append((chi, warm))
        time.sleep(self.sleep.get(chi, 0.0))
        if chi in self.fail and (self.retries == 0 or warm == 1.0):
            raise ConvergenceError(f"no convergence at {chi:g}", {"iterations": 9})
        x = 10 * chi if chi == self.jump_at else chi
        return ladder.Point(chi, value=np.array([x]))

    def warm(self, state):
        return float(state.value[0])

    def change(self, state, prev):
        return ladder.relative_change(state.value, prev.value)

    def results(self, states):
        return [Result.point(PARAMS, st.chi, {"train_mean": st.value, "test_mean": st.value, "test_var": st.value})
                for st in states]


def test_warm_starts_follow_the_ladder_order():
    s = Scripted()
    out = ladder.solve(s, [1.0, 5.0, 2.0])
    assert [c for c, _ in s.calls] == [1.0, 5.0, 2.0]
    assert [w for _, w in s.calls] == [None, 1.0, 5.0]
    assert [r.chi for r in out] == [1.0, 5.0, 2.0] and all(r.converged for r in out)


def test_a_failing_point_ends_the_ladder_and_keeps_the_points_before():
    out = ladder.solve(Scripted(fail={4.0}), [1.0, 2.0, 4.0, 8.0])
    assert [r.converged for r in out] == [True, True, False]
    failed = out[-1].to_dict()
    assert failed.pop("seconds") >= 0.0
    assert failed == {"chi": 4.0, "converged": False, "error": "no convergence at 4",
                      "diagnostics": {"iterations": 9.0}, "warnings": []}


def test_a_non_finite_result_mid_ladder_is_its_failure_and_ends_the_ladder():
    """A point whose solve returned but whose numbers are not finite is recorded as that point's failure: the
    points before kept, it and the ones after not (keeping it, an off-by-one, passed every ladder test)."""
    class NaNAtFour(Scripted):
        def results(self, states):
            out = super().results(states)
            for r in out:
                if r.chi == 4.0:
                    r.test_mean = np.array([np.nan])
            return out

    out = ladder.solve(NaNAtFour(), [1.0, 2.0, 4.0, 8.0])
    assert [(r.chi, r.converged) for r in out] == [(1.0, True), (2.0, True), (4.0, False)]
    assert "non-finite" in out[-1].to_dict()["error"]


def test_a_failing_step_is_retried_through_the_geometric_mid_point():
    s = Scripted(fail={4.0}, retries=2)
    out = ladder.solve(s, [1.0, 4.0])
    assert [c for c, _ in s.calls] == [1.0, 4.0, 2.0, 4.0]
    assert out[-1].converged and any("intermediate chi = 2" in w for w in out[-1].warnings)


def test_branch_jumps_are_flagged_between_nearby_chi_only():
    out = ladder.solve(Scripted(jump_at=1.5), [1.0, 1.5])
    assert any("possible branch jump" in w for w in out[1].warnings)
    out = ladder.solve(Scripted(), [1.0, 1.5])  # a 50% change, not more than half
    assert not any("branch" in w for w in out[1].warnings)
    out = ladder.solve(Scripted(jump_at=10.0), [1.0, 10.0])  # far apart in chi: no verdict
    assert not any("branch" in w for w in out[1].warnings)


def test_each_point_reports_its_own_time():
    out = ladder.solve(Scripted(sleep={1.0: 0.0, 2.0: 0.3, 3.0: 0.05}), [1.0, 2.0, 3.0], setup_seconds=0.2)
    sec = [r.seconds for r in out]
    assert sec[0] == pytest.approx(0.2, abs=0.05)  # the set-up belongs to the first point
    assert sec[1] == pytest.approx(0.3, abs=0.05) and sec[2] == pytest.approx(0.05, abs=0.04)
    assert math.isclose(sum(sec), 0.55, abs_tol=0.1)


def test_the_progress_bar_names_each_chi_under_way_and_counts_the_points_solved(monkeypatch):
    """With progress on, one bar over the ladder: the chi being solved is named before its solve, a step is
    counted after it (not for the failing point), the bar is closed even when a point fails; the results are
    those without the bar."""
    seen = []

    class Recorder:
        def __init__(self, total, enabled, label):
            seen.append(("open", total, enabled))

        def describe(self, what):
            seen.append(("now", what))

        def step(self, what=""):
            seen.append(("done", what))

        def close(self):
            seen.append(("close",))

    monkeypatch.setattr(ladder, "Progress", Recorder)
    with_bar = ladder.solve(Scripted(fail={4.0}), [1.0, 2.0, 4.0], progress=True)
    assert seen == [("open", 3, True), ("now", "chi = 1"), ("done", "chi = 1"), ("now", "chi = 2"),
                    ("done", "chi = 2"), ("now", "chi = 4"), ("close",)]
    without = ladder.solve(Scripted(fail={4.0}), [1.0, 2.0, 4.0])
    assert [r.converged for r in with_bar] == [r.converged for r in without] == [True, True, False]
    assert [list(r.test_mean) for r in with_bar[:2]] == [list(r.test_mean) for r in without[:2]]


def test_the_progress_bar_draws_on_stderr_so_that_json_on_stdout_stays_whole(capsys):
    # `msat predict --json -` with a terminal on stderr: the bar wrote to stdout, ahead of the JSON
    from msat.runtime.progress import Progress

    bar = Progress(3, True, "ladder")
    bar.step("chi = 1")
    bar.close()
    out, err = capsys.readouterr()
    assert out == "" and err != ""


def test_work_inside_a_long_point_is_named_on_the_bar_and_nowhere_once_the_ladder_ends(monkeypatch):
    """A cold start of relu kernel adaptation (P = 20, chi = N = 40) ran 11 minutes with the bar saying only
    'chi = 40': the steps of its climb (progress.status) now show on the bar under the point's chi, and a status
    said outside a ladder goes nowhere."""
    from msat.runtime import progress

    seen = []

    class Recorder:
        def __init__(self, total, enabled, label):
            pass

        def describe(self, what):
            seen.append(what)

        step = close = lambda self, *a: None

    class Climbing(Scripted):
        def solve(self, chi, warm):
            if warm is None and chi > 1:
                return ladder.annealed(lambda c, w: super(Climbing, self).solve(c, w), chi, self.warm)
            return super().solve(chi, warm)

    monkeypatch.setattr(ladder, "Progress", Recorder)
    ladder.solve(Climbing(), [4.0], progress=True)
    assert seen == ["chi = 4", "chi = 4: cold start annealed from chi = 1, step 1 of 2 (chi = 2)",
                    "chi = 4: cold start annealed from chi = 1, step 2 of 2 (chi = 4)"], seen
    progress.status("after the ladder")
    assert len(seen) == 3


def test_a_cold_start_that_fails_on_its_climb_says_so():
    """A cold start far from chi = 1 climbs from there (ladder.annealed); where the climb failed the error named
    only an intermediate chi (outside audit: "did not converge (chi=24.9...)" for a request at 40, after 880 s)."""
    def solve(chi, warm):
        if chi > 5:
            raise ConvergenceError(f"no convergence at {chi:g}", {"iterations": 9})
        return ladder.Point(chi, value=np.array([chi]))

    with pytest.raises(ConvergenceError) as info:
        ladder.annealed(solve, 16.0, lambda st: float(st.value[0]))
    assert str(info.value) == "cold start annealed from chi = 1 towards 16: solved up to chi = 4, then no convergence at 8"
    assert info.value.diagnostics == {"iterations": 9, "annealed_to": 4.0}
    assert ladder.annealed(solve, 4.0, lambda st: float(st.value[0])).warnings == ["annealed from chi = 1 in 2 steps"]
