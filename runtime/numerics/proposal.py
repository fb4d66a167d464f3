"""The covariance of the Gaussian proposal behind the single-neuron Monte Carlo's final draws
(numerics.reweighted_saddle; docs/theory.md §6): q's second moment estimated from weighted draws, or the
law of the unit with its features statistically linearised, chosen by the evenness of their weights to q
on a pilot."""
from __future__ import annotations

import math

import numpy as np

from msat import generated

from .normals import standard_normals

#: candidate covariances of the Gaussian final draws: q's estimated second moment, the linearised unit's law
PROPOSALS = ("moments", "linearised")
#: the linearised law is a candidate where its precision's smallest eigenvalue exceeds this (well inside existence)
LINEARISED_MIN = 0.05
#: fresh draws of each candidate proposal that choose between them (proposal)
PILOT = 2000
#: importance weights are trusted (their effective size and replicas' spread honest) only while the Pareto shape of
#: their upper tail is under this (tail_index): from 1/2 on their variance is infinite
TAIL_MAX = 0.5
#: ... and the final draws, whose replicas' spread is the result's Monte Carlo error, only while it is under this:
#: short of 1/2 the variance is finite but heavy, and four replicas understate it (measured, relu at sqrt N,
#: P = 40, N = 160, k 0.42-0.47: the test means' spread over 8 seeds 1.4 times the reported error; with MALA
#: final draws instead their spread equals it and is 1.7 times smaller, at 1.3 times the time). The field loop's
#: draw sets too (relu, same setting, chi = 4, k 0.39 on 4,096 draws, one saddle, 16 loop seeds: with 1/2 the
#: test corrections' spread 1.16 times the reported error, with 0.4 0.87 times and 1.4 times smaller)
TAIL_FINAL = 0.4


def ess(w):
    """The effective sample size (sum w)^2 / sum w^2 of weights w."""
    return float(w.sum() ** 2 / (w @ w))


def tail_index(w):
    """The Pareto shape k of the upper tail of the weights w (ArviZ's Pareto-smoothed importance sampling
    fit, docs/theory.md §6). Weights whose tail has k >= 1/2 have no finite variance: their effective
    size and the spread of independent sets then both understate the error, however many draws."""
    import warnings

    import arviz as az

    lw = np.log(np.maximum(w, np.finfo(float).tiny))
    if not np.ptp(lw) > 0:
        return -math.inf  # equal weights (draws of q itself) have no tail; ArviZ's fit would say inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ warns above 0.7; the caller decides on k itself
        return float(az.psislw(lw - lw.max())[1])


def proposal(saddle, d, w, Ct0, seed):
    """The covariance of the Gaussian final draws: of the candidates (PROPOSALS), q's second moment from
    the weighted draws d (moment_proposal) and the linearised unit's law (linearised, where it exists),
    the one whose weights to q_{Ct0} are the more even on PILOT fresh draws of each. The estimated moment
    carries the noise of the D^2 / 2 numbers it takes from the draws d; the linearised law has none, but
    it misses q's mean (relu) and its non-Gaussian shape (far from standard scaling): which one wins
    depends on the regime. The name of the one taken is left in proposal.chosen."""
    make = {"moments": lambda: moment_proposal(saddle, d, w), "linearised": lambda: linearised(saddle, d, w, Ct0)}
    candidates = [(name, S) for name, S in ((name, make[name]()) for name in PROPOSALS) if S is not None]
    if not candidates:
        candidates = [("moments", moment_proposal(saddle, d, w))]
    fractions = [pilot_fraction(saddle, S, Ct0, seed) for _, S in candidates] if len(candidates) > 1 else [1.0]
    proposal.chosen, Sigma = candidates[int(np.argmax(fractions))]
    return Sigma


def pilot_fraction(saddle, Sigma, Ct0, seed):
    """The effective fraction of the weights to q_{Ct0} of PILOT draws of N(0, Sigma)."""
    Z, u, W = gaussian_draws(saddle, Sigma, PILOT, seed)
    F = np.empty((PILOT, saddle.P))
    saddle._model.features(saddle.X, W, saddle._act, F)
    lw = log_weights(Z, u, F, Ct0)
    return ess(np.exp(lw - lw.max())) / PILOT


def gaussian_draws(saddle, Sigma, n, seed):
    """(Z, u, W): n draws W of N(0, Sigma) (scrambled Sobol' points u, numerics.normals), and Z = W / sqrt(var_w),
    whose prior is N(0, I) and whose proposal is N(0, R R^T), Z = u R^T."""
    R = np.linalg.cholesky(Sigma / saddle.var_w)
    u = standard_normals(seed, n, saddle.D)
    Z = u @ R.T
    return Z, u, np.ascontiguousarray(Z * math.sqrt(saddle.var_w))


def log_weights(Z, u, F, Ct0):
    """ln q_{Ct0} / N(0, Sigma) per draw, up to a constant: the generated proposal ratio and tilt (F: the
    draws' training features)."""
    layer = generated.deep_linear_adaptation()
    return layer.proposal_log_ratio(Z, u)[:, 0] + layer.tilt(F, Ct0)[:, 0]


def linearised(saddle, d, w, Ct0):
    """The tilted law of the unit with its features statistically linearised, phi(x_a.w) ~ beta_a x_a.w
    (beta_a the weighted least-squares slope of phi(x_a.w) on x_a.w over the draws d, weights w): a
    Gaussian with the generated precision I - 2 var_w Xb^T Ct0 Xb in prior-whitened weights, its variances
    raised to at least the prior's (q's tails are the prior's wherever phi is bounded); None where that
    precision is not positive definite (the linearised law does not exist)."""
    P = saddle.P
    U = d.W @ saddle.X.T
    F = d.F[:, :P]
    mu, mf = w @ U, w @ F
    beta = (w @ (U * F) - mu * mf) / np.maximum(w @ (U * U) - mu * mu, 1e-300)
    lam, V = np.linalg.eigh(generated.deep_linear_adaptation().linearised_precision(
        saddle.X * beta[:, None], Ct0, saddle.var_w))
    if not lam[0] > LINEARISED_MIN:
        return None
    return saddle.var_w * (V / np.minimum(lam, 1.0)) @ V.T


def moment_proposal(saddle, d, w):
    """q's second moment from the weighted draws on the span of the training inputs (eigenvalues
    raised to at least the prior's), the prior's variance across it (where q is the prior)."""
    Q = saddle.test_split()[2]
    Wp = d.W @ Q
    S = Wp.T @ (Wp * w[:, None])
    lam, U = np.linalg.eigh(0.5 * (S + S.T))
    V = Q @ U
    return (V * (np.maximum(lam, saddle.var_w) - saddle.var_w)) @ V.T + saddle.var_w * np.eye(saddle.D)
