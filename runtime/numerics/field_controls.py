"""The prior's cumulants as a control variate for the kernel field's loop (docs/theory.md §2e): near the prior
(chi/N small) reweighted prior draws share most of their noise with the same draws' plain moments, which cancels
against an independent, larger estimate of the prior's own. The prior's cumulants do not depend on chi: a chi
ladder computes them once (field_cumulants' cache of the data set)."""
from __future__ import annotations

import numpy as np

from .field_cumulants import MonteCarloCumulants, _cached, data_key, prior_features
from .field_loop import Coordinates

#: the effective sample fraction of reweighted prior draws from which the prior's cumulants serve as a
#: control variate (near the prior the weighted and plain moments of the same draws differ little)
CONTROL_MIN = 0.8
#: draws of the prior's own cumulants, all replicate sets together (at least this many, and 32 dm: dm the means'
#: coordinates), split evenly between the sets
PRIOR_DRAWS = 65536


class PriorControlled(MonteCarloCumulants):
    """Cumulants of reweighted prior draws with the prior's cumulants from an independent, larger set of
    prior draws as a control variate (docs/theory.md §2e): for raw moments
    E_q[u u^T] ~ sum_m w_m u_m u_m^T - (1/M) sum_m u_m u_m^T + E_prior,big[u u^T], and the mean
    alike; W'' = that second moment minus the mean's outer product. Near the prior (chi/N small, the
    weights nearly even) the two sums over the same draws share most of their noise, which cancels,
    and what remains is the larger set's. W''' is the weighted draws' own, centred at this mean."""

    def __init__(self, F, weights, coords: Coordinates, prior: MonteCarloCumulants, plain=None):
        super().__init__(F, weights, coords)
        plain = MonteCarloCumulants(F, np.ones(len(F)), coords) if plain is None else plain
        self.with_control(prior, plain)


def _moments_only(c: MonteCarloCumulants) -> MonteCarloCumulants:
    c.w2()
    c.parts = []  # the mean and W'' are all that is kept
    return c


def plain_cumulants(F, coords: Coordinates, data, seed):
    """The unweighted cumulants of prior draws F (drawn with `seed`): the prior's own estimate from the
    same draws, which does not depend on chi when the draws are common to the ladder's points."""
    return _cached(data, ("plain", seed, F.shape), lambda: _moments_only(MonteCarloCumulants(F, np.ones(len(F)),
                                                                                             coords)))


def prior_cumulants(X_all, P, g_w, activation, coords: Coordinates, seed, replicates):
    """The prior's cumulants from `replicates` independent sets of max(PRIOR_DRAWS, 32 dm) / replicates
    prior draws each (scrambled Sobol' points), one per replicate set of the loop, so that the replicates'
    spread still carries their error. They do not depend on chi: a chi ladder computes them once."""
    M = int(max(PRIOR_DRAWS, 32 * coords.dm)) // replicates

    def make():
        return [_moments_only(MonteCarloCumulants(prior_features(X_all, g_w, activation, M,
                                                                 seed + 15485863 * (r + 1))[0], np.ones(M), coords))
                for r in range(replicates)]

    return _cached(data_key(X_all, P, g_w, activation), ("prior", seed, replicates, M), make)
