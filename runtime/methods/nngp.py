"""`--method nngp` (docs/theory.md §1): the infinite-width Gaussian-process predictor with the NNGP
kernel K^phi, i.e. the kernel-rescaling field at s = 1 for every chi."""
from __future__ import annotations

import numpy as np

from ..ladder import Point
from ..numerics import observe
from ..results import Result
from . import SpectralSolver


def predictions(spec, chis, kappa, g_v):
    """(train means, test means, test variances) of the NNGP at each chi (rows): the kernel-rescaling
    tables at s = 1."""
    tab = observe.Tables(spec, np.ones(len(chis)), np.asarray(chis, dtype=float), kappa, g_v, order=0)
    return (observe.train_mean(spec, tab.train[:, 0, :]), observe.test_mean(spec, tab.test[:, 0, :]),
            observe.test_var(spec, tab.var[:, 0, :], tab.var_scalar[:, 0]))


class _Solver(SpectralSolver):

    def solve(self, chi, warm):
        return Point(chi)

    def results(self, states):
        p = self.params
        chis = np.array([st.chi for st in states])
        train, test, var = predictions(self.spec, chis, p.kappa, p.g_v)
        return [Result.point(p, c, {"train_mean": train[j], "test_mean": test[j], "test_var": var[j],
                                    "s_mean": 1.0, "s_var": 0.0})
                for j, c in enumerate(chis.tolist())]


def solver(data, params, **_):
    return _Solver(data, params)
