"""The Python API behind `msat predict` and `msat sample` (the contract in docs/cli.md): validate the data and
every parameter once, build the method's solver, run the chi ladder (docs/theory.md §5).

    data -> Params -> methods.<method>.solver -> ladder.solve -> [Result]
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import re
import sys
import time
import warnings

from . import ladder, methods, params as _params, roundoff, values
from .data import validate
from .errors import ConvergenceError, InputError, MsatWarning
from .results import chi_warnings


def predict(X, y, X_test=None, *, N=None, chi, kappa, g_v=1.0, g_w=1.0, widths=None, depth=None,
            activation="linear", method=None, order=None, dressed=False, estimator="auto", seed=0,
            mc_samples=None, samples=None, chains=None, readout="sampled", progress=False, draws=None):
    """Posterior predictions of a Bayesian two-layer network (docs/theory.md; the contract in docs/cli.md).

    Returns one :class:`~msat.runtime.results.Result`, or a list of them (one per chi, in ladder
    order) when ``chi`` is a ladder (a sequence, or a string with commas). Each behaves as the
    contract's JSON object (``r["test_mean"]``, ``r.to_dict()``) and holds arrays as attributes
    (``r.test_mean``). Raises InputError for bad input and ConvergenceError when a single-chi
    solve fails (a failing ladder point is recorded instead, the points before it kept).

    The hidden layers: ``N`` alone is one layer of width N; ``depth=L`` with ``N`` is L layers of
    width N; ``widths=[N1, ..., NL]`` sets each width (docs/theory.md §2d). ``g_w`` is one value or
    one per layer; chi scales the readout only.

    ``method``: nngp, exact, loop, adaptive or sample (default: loop for linear networks,
    adaptive otherwise); ``order``: loop or kernel-adaptation order; ``dressed``: loop series
    around the saddle of the full action. Non-linear adaptive: ``estimator`` "cumulant" (small Ct),
    "mc" (the single-neuron law's Monte Carlo on fixed draws) or "auto" (mc); ``mc_samples``
    Monte Carlo draws (prior draws for cumulant; for mc the final fixed draws of all replicate sets,
    default 80000); ``seed`` seeds every Monte Carlo. Sampling: ``samples`` draws per chain (1000),
    ``chains`` (4; 16 where a non-linear layer has at most 4 units, whose modes R-hat must see),
    ``readout`` ("sampled": HMC over all weights; "marginal": the hidden weights only, the readout
    integrated out exactly and the outputs Rao-Blackwellised, one hidden layer),
    ``draws`` (a list that receives the raw chains per chi), ``progress`` (a progress bar).
    """
    chis, is_ladder = values.chi_ladder(chi)
    if draws is not None and not isinstance(draws, list):
        raise InputError(f"draws is a list that receives the raw chains per chi (msat sample --draws FILE writes "
                         f"them to a file), got {type(draws).__name__}")
    values.flag("progress", progress)
    data = validate(X, y, X_test)
    p = _params.build(data.P, data.D, data.P_test, N=N, kappa=kappa, g_v=g_v, g_w=g_w, widths=widths, depth=depth,
                      activation=activation, method=method, order=order, dressed=dressed,
                      estimator=estimator, seed=seed, mc_samples=mc_samples, samples=samples,
                      chains=chains, readout=readout, n_chi=len(chis))
    _params.check_scales(data.X, data.y, data.X_test, p)
    t0 = time.perf_counter()
    solver = methods.solver(data, p, progress=progress, draws=draws)
    # the sampler draws its own bar (per chain); two live bars cannot share the terminal
    results = ladder.solve(solver, chis, setup_seconds=time.perf_counter() - t0,
                           progress=progress and p.method != "sample")
    if roundoff.probed(p):
        results = roundoff.probe(data, p, results, getattr(solver, "spec", None))
    for r in results:
        if not r.has_values:  # a failed point keeps the contract's warning on its chi, and says which order failed
            r.warnings = chi_warnings(p.N, r.chi) + ([p.order_note] if p.order_note else []) + r.warnings
    if not is_ladder and not results[0].has_values:
        raise ConvergenceError(results[0].error, results[0].diagnostics)
    _announce(results)
    return results if is_ladder else results[0]


#: set by msat's own callers (the CLI, `msat run`, sweep tasks), which report results' warnings their own way;
#: a context variable, so that a thread's setting (a Dask worker's task) is its own
_QUIET = contextvars.ContextVar("msat_quiet", default=False)


@contextlib.contextmanager
def quiet():
    """Within it, predict raises no MsatWarning (the results keep their `warnings`)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def _announce(results) -> None:
    """Each distinct warning of the results, and each point that did not converge, as a Python warning
    (MsatWarning) at the caller's line: in a notebook an R-hat over its bound was visible only in `r.warnings`. A
    line that several chi points share is raised once, naming them, and so are lines that differ only in their
    numbers (chi/N along a ladder, or the chi a line names: a 200-point ladder raised some 170 warnings)."""
    if _QUIET.get():
        return
    level, frame, here = 2, sys._getframe(1), os.path.normcase(os.path.dirname(os.path.abspath(__file__)))
    while frame is not None and os.path.normcase(os.path.abspath(frame.f_code.co_filename)).startswith(here + os.sep):
        frame, level = frame.f_back, level + 1  # the first frame outside msat.runtime: the user's call
    groups = {}  # the line with its numbers blanked -> (line, chi) pairs, in ladder order
    for r in results:
        for line in r.warnings + ([f"did not converge: {r.error}"] if not r.converged else []):
            groups.setdefault(_NUMBER.sub("#", line), []).append((line, r.chi))
    for pairs in groups.values():
        lines, chis = list(dict.fromkeys(p[0] for p in pairs)), list(dict.fromkeys(p[1] for p in pairs))
        if len(lines) == 1:
            where = "" if lines[0].startswith("chi = ") else "chi = " + ", ".join(f"{c:g}" for c in chis) + ": "
            warnings.warn(where + lines[0], MsatWarning, stacklevel=level)
            continue
        # the lines differ in their numbers: once, naming the points, without each line's own "chi = x" (a line that
        # names its chi, "chi = 0.1 lies outside [1, N]", came once per point of a ladder), with the first point's
        # other numbers where they differ too
        rests = list(dict.fromkeys(_LEAD_CHI.sub("", ln, count=1) for ln in lines))
        note = "" if len(rests) == 1 else f" (the numbers at chi = {chis[0]:g}; each result's warnings hold its own)"
        warnings.warn("chi = " + ", ".join(f"{c:g}" for c in chis) + ": " + rests[0] + note, MsatWarning,
                      stacklevel=level)


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?")
_LEAD_CHI = re.compile(r"^chi = [^\s:]+:? ")


def sample(X, y, X_test=None, *, N=None, chi, kappa, g_v=1.0, g_w=1.0, widths=None, depth=None,
           activation="linear", samples=1000, chains=None, seed=0, readout="sampled", draws=None, progress=False,
           method="sample", order=None, dressed=False, estimator="auto", mc_samples=None):
    """Finite networks sampled from the posterior (docs/theory.md §7): ``predict`` with
    ``method="sample"``; results add train_mean_mcse, test_mean_mcse, train_var, rhat_max, ess_min.
    ``draws``: a list that receives, per chi point, a dict of the raw chains (the keys of `msat sample
    --draws FILE.npz` in docs/cli.md, ``converged`` False for a point that failed); the CLI writes it to
    the file. As `msat sample` does, it takes predict's other options: ``method`` must be "sample", and
    ``order``, ``dressed``, ``estimator`` and ``mc_samples`` are named as ignored in each result's warnings."""
    if method is not None and str(method).strip().lower() != "sample":
        raise InputError(f"msat.runtime.sample runs method 'sample', got method={method!r}: use "
                         "msat.runtime.predict for it")
    return predict(X, y, X_test, N=N, chi=chi, kappa=kappa, g_v=g_v, g_w=g_w, widths=widths, depth=depth,
                   activation=activation, method="sample", order=order, dressed=dressed, estimator=estimator,
                   mc_samples=mc_samples, samples=samples, chains=chains, seed=seed, readout=readout, draws=draws,
                   progress=progress)
