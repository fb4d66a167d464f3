"""The Python API's warnings (runtime.predict): a result's warnings and a point that did not converge reach a
notebook as Python warnings (MsatWarning) at the caller's line; the CLI prints them as its own lines only."""
import warnings

import numpy as np
import pytest

from msat.runtime import data, predict, sample
from msat.runtime.errors import InputError, MsatWarning
from tests_support import run_cli


def test_a_sampled_point_whose_chains_disagree_warns_at_the_callers_line():
    """An audit: `sample(...)` with R-hat 1.08 returned converged False in silence (only `r.warnings` said so)."""
    ds = data.builtin("teacher", P=10, D=4, P_test=2, seed=0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r = sample(ds.X, ds.y, ds.X_test, N=20, chi=5, kappa=0.3, samples=8, chains=2, seed=1)
    assert not r.converged  # eight draws a chain: R-hat far over its bound
    ours = [w for w in seen if issubclass(w.category, MsatWarning)]
    assert any("did not converge" in str(w.message) and "R-hat" in str(w.message) for w in ours)
    assert {w.filename for w in ours} == {__file__}


def test_each_warning_of_a_ladder_is_raised_once_and_none_for_a_clean_point():
    ds = data.builtin("teacher", P=10, D=4, P_test=2, seed=0)
    with pytest.warns(MsatWarning) as seen:
        rs = predict(ds.X, ds.y, ds.X_test, N=10, chi=[1, 50], kappa=0.5)
    texts = [str(w.message) for w in seen]
    assert texts == [w for r in rs for w in r.warnings] and texts[0].startswith("chi = 50")
    with warnings.catch_warnings():
        warnings.simplefilter("error", MsatWarning)
        predict(ds.X, ds.y, ds.X_test, N=10, chi=2, kappa=0.5)


def test_the_cli_prints_its_lines_and_raises_no_python_warning(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error", MsatWarning)  # a Python warning would now be an internal error (exit 1)
        code, _, err = run_cli(["predict", "--dataset", "teacher", "--P", "10", "--D", "4", "--N", "10",
                                "--chi", "50", "--kappa", "0.5"], capsys)
    assert code == 0 and err.count("outside [1, N]") == 1 and "MsatWarning" not in err


def test_a_line_every_point_of_a_ladder_shares_is_raised_once_and_quiet_holds_per_thread():
    """A review: a note on every point of a 200-point ladder gave 200 warnings; msat's own callers silenced the
    category with catch_warnings, which a second thread (a Dask worker's other task) could leave installed."""
    import threading

    from msat.runtime.predict import quiet

    ds = data.builtin("teacher", P=10, D=4, P_test=2, seed=0)
    with pytest.warns(MsatWarning) as seen:
        rs = predict(ds.X, ds.y, ds.X_test, N=10, chi=[1, 2, 4], kappa=0.5, method="nngp", dressed=True)
    assert all(len(r.warnings) == 1 for r in rs)  # each point keeps its own
    assert [str(w.message) for w in seen] == ["chi = 1, 2, 4: " + rs[0].warnings[0]]

    def quiet_call():
        with quiet():
            predict(ds.X, ds.y, ds.X_test, N=3, chi=50, kappa=0.5)

    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("always")
        t = threading.Thread(target=quiet_call)
        t.start()
        t.join()
        predict(ds.X, ds.y, ds.X_test, N=3, chi=60, kappa=0.5)  # this thread is not quiet
    assert [str(w.message).startswith("chi = 60") for w in heard if issubclass(w.category, MsatWarning)] == [True]


def test_lines_that_differ_only_in_their_numbers_are_raised_once():
    """Kernel adaptation's test_var note names chi/N, so each point of a ladder had its own line: a 200-point
    ladder raised about 170 warnings. One warning now names the points and gives the first one's numbers."""
    ds = data.builtin("teacher", P=10, D=4, P_test=2, seed=0)
    chis = [float(c) for c in np.geomspace(1, 40, 12)]
    with pytest.warns(MsatWarning) as seen:
        rs = predict(ds.X, ds.y, ds.X_test, N=40, chi=chis, kappa=0.5, method="adaptive", order=1)
    noted = [r.chi for r in rs if any("adapted kernel" in w for w in r.warnings)]
    texts = [str(w.message) for w in seen if "adapted kernel" in str(w.message)]
    assert len(noted) > 3 and len({w for r in rs for w in r.warnings if "adapted kernel" in w}) == len(noted)
    assert texts == ["chi = " + ", ".join(f"{c:g}" for c in noted) + ": "
                     + next(w for w in rs[chis.index(noted[0])].warnings if "adapted kernel" in w)
                     + f" (the numbers at chi = {noted[0]:g}; each result's warnings hold its own)"]


def test_a_line_that_names_its_own_chi_is_raised_once_for_the_ladder():
    """A review: "chi = x lies outside [1, N]" names its point, so a 200-point ladder from 0.01 raised one such line
    per point; they are one warning naming the points now."""
    ds = data.builtin("teacher", P=10, D=4, P_test=2, seed=0)
    with pytest.warns(MsatWarning) as seen:
        predict(ds.X, ds.y, ds.X_test, N=50, chi=[0.1, 0.2, 100, 200], kappa=0.5)
    outside = [str(w.message) for w in seen if "outside [1, N]" in str(w.message)]
    assert outside == ["chi = 0.1, 0.2, 100, 200: lies outside [1, N] = [1, 50] (allowed, but outside the regimes "
                       "between standard and mean-field scaling)"]



def test_sample_takes_predicts_other_options_as_msat_sample_does():
    """An audit: `sample(..., method="sample")` raised TypeError where `msat sample --method sample --order 2` runs
    and names --order as ignored; another method is a user mistake there as on the command line."""
    ds = data.builtin("teacher", P=6, D=3, P_test=1, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MsatWarning)
        r = sample(ds.X, ds.y, ds.X_test, N=10, chi=1, kappa=0.5, samples=50, chains=2, method="sample", order=2,
                   estimator="mc")
    assert [w for w in r.warnings if w.startswith("--order applies to") and "ignored by sample" in w]
    assert [w for w in r.warnings if w.startswith("--estimator applies to")]
    with pytest.raises(InputError, match="runs method 'sample', got method='exact'"):
        sample(ds.X, ds.y, ds.X_test, N=10, chi=1, kappa=0.5, method="exact")


def test_no_test_points_give_no_note_on_the_test_variance():
    """An audit: erf kernel adaptation without test points still said what its test_var leaves out."""
    ds = data.builtin("teacher", P=6, D=3, P_test=2, seed=0)
    kw = dict(N=10, chi=5, kappa=0.5, activation="erf", method="adaptive", order=1, mc_samples=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MsatWarning)
        with_test = predict(ds.X, ds.y, ds.X_test, **kw)
        without = predict(ds.X, ds.y, None, **kw)
    note = "leaves out the kernel's own fluctuations"
    assert [w for w in with_test.warnings if note in w]
    assert not [w for w in without.warnings if note in w] and without.test_var.size == 0
