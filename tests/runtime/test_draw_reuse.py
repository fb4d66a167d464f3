"""Nothing the single-neuron saddle on fixed draws computed is computed again (numerics.draw_sets,
numerics.reweighted_saddle, numerics.refine; docs/theory.md §6): the draw sets' features are rows of their
union's, not copied into it; a finer solve of the same draws starts from the map's evaluation where the last
solve ended; the replicas' outputs come from refine.settle. Each against the route that recomputes, to the
last bit: the refactor moves no number."""
import numpy as np
import pytest

from msat.runtime import data, predict
from msat.runtime.numerics import draw_sets, refine
from msat.runtime.numerics import reweighted_saddle as rs
from msat.runtime.numerics.nonlinear_saddle import NonlinearSaddle


def _saddle(act, P=8, D=12, N=32, seed=0):
    ds = data.builtin("teacher", P=P, D=D, P_test=3, seed=seed)
    return NonlinearSaddle(ds.X, ds.y, ds.X_test, N, 0.2, 1.0, 1.0, act, 1, estimator="mc", seed=seed)


def _same_draws(a, b):
    assert np.array_equal(a.F, b.F) and np.array_equal(a.Fv, b.Fv) and np.array_equal(a.logw0, b.logw0)
    assert a.reference == b.reference and a.steep == b.steep
    for x, y in zip(a.control, b.control):
        assert np.array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("act", ["erf", "relu"])
def test_pooled_sets_are_the_sets_drawn_alone_and_rows_of_their_union(act):
    s = _saddle(act)
    Ct0 = s.field(s.Kphi, 2.0)[2]
    seeds = [11, 12, 13]
    Sigma = s.var_w * np.eye(s.D) * 1.1
    for pooled, alone in ((draw_sets.gaussian_sets(s, Sigma, Ct0, 700, seeds),
                           [draw_sets.gaussian_set(s, Sigma, Ct0, 700, k) for k in seeds]),
                          (draw_sets.mala_sets(s, Ct0, 500, seeds),
                           [draw_sets.mala_set(s, Ct0, 500, k)[0] for k in seeds])):
        sets, union = pooled
        for a, b in zip(sets, alone):
            _same_draws(a, b)
            assert np.shares_memory(a.F, union.F) and np.shares_memory(a.Fv, union.Fv)
        _same_draws(union, draw_sets.union(alone))


def test_a_finer_solve_starts_where_the_last_ended_without_a_pass_over_the_draws(monkeypatch):
    s = _saddle("erf")
    chi = 1.0
    Ct0 = s.field(s.Kphi, chi)[2]
    passes = []
    inner = rs.fixed_point_map

    def counted(*args):
        sweep, jvp = inner(*args)

        def counting(x):
            passes.append(1)
            out = sweep(x)
            counting.beyond = sweep.beyond
            return out

        counting.beyond = 0.0
        return counting, jvp

    monkeypatch.setattr(rs, "fixed_point_map", counted)
    results = []
    for memo in (True, False):
        d = draw_sets.gaussian_set(s, s.var_w * np.eye(s.D), Ct0, 2000, 5)
        first = rs._solve_on(s, chi, s.Kphi, d, Ct0, 1e-6)
        if not memo:
            d.memo = None
        del passes[:]
        finer = rs._solve_on(s, chi, first[0], d, Ct0, 1e-11)
        results.append((finer, len(passes)))
    (with_memo, n_memo), (without, n_without) = results
    assert with_memo[5] and n_memo == n_without - 1, (n_memo, n_without)
    for a, b in zip(with_memo[:4], without[:4]):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("act, chi", [("erf", 1.0), ("relu", 4.0)])
def test_the_saddle_is_the_one_recomputing_everything_gives(act, chi, monkeypatch):
    ds = data.builtin("teacher", P=10, D=15, P_test=4, seed=2)

    def run():
        return predict(ds.X, ds.y, ds.X_test, N=40, chi=chi, kappa=0.2, activation=act, method="adaptive",
                       order=1, seed=3, estimator="mc")

    reused = run()
    # every set drawn alone and pooled by copying, every solve from scratch, every replica's outputs again
    monkeypatch.setattr(rs, "gaussian_sets", lambda s, Sig, Ct0, n, seeds: (lambda sets: (
        sets, draw_sets.union(sets)))([draw_sets.gaussian_set(s, Sig, Ct0, n, k) for k in seeds]))
    remembered = rs._remembered
    monkeypatch.setattr(rs, "_remembered", lambda sweep, last=None: remembered(sweep))
    settle = refine.settle
    monkeypatch.setattr(refine, "settle", lambda *a, **k: settle(*a, **k)[:3] + ([],))
    again = run()
    for key in ("train_mean", "test_mean", "test_var"):
        assert np.array_equal(np.asarray(reused[key]), np.asarray(again[key])), key
        assert np.array_equal(np.asarray(reused.mc_error[key]), np.asarray(again.mc_error[key])), key
