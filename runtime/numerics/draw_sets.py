"""Draw sets of the tilted single-neuron law q_{Ct0} for the saddle on fixed draws (numerics.reweighted_saddle,
numerics.mixture_saddle; docs/theory.md §6): their features, log weights to q_{Ct0} and control variate, made
by single-neuron MALA or by a Gaussian proposal (numerics.proposal)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from msat import generated

from ..spectral import phi_kernels
from .field_cumulants import tilted_draws
from .proposal import ess as _ess, gaussian_draws, log_weights


@dataclass
class Draws:
    """Features F (training points, then the test points' smoothed features) and Fv (the test points'
    plain features) of draws targeting q_{Ct0}: log weights logw0, the reference effective size of
    those weights, the neurons W (kept where a proposal is fitted to them), the control (zero, or E_G minus
    the plain draw mean of the moments), and whether they hold draws of a separated mode of q (steep map)."""
    F: np.ndarray
    Fv: np.ndarray
    logw0: np.ndarray
    reference: float
    W: np.ndarray
    control: tuple
    steep: bool = False
    #: the fixed-point map's last evaluation at a solve's result (numerics.reweighted_saddle._solve_on): a solve
    #: again from there, finer, starts without a pass over the draws
    memo: tuple = field(default=None, repr=False, compare=False)


def union(sets, F=None, Fv=None):
    """The sets pooled; F and Fv, where given, already hold their features one set after the other (pooled)."""
    n = [len(s.logw0) for s in sets]
    # every set carries equal mass: weights normalised within sets before they are pooled
    logw0 = np.concatenate([s.logw0 - np.log(np.sum(np.exp(s.logw0 - s.logw0.max()))) - s.logw0.max()
                            for s in sets])
    control = tuple(sum(c * k for c, k in zip(parts, n)) / sum(n) for parts in zip(*(s.control for s in sets)))
    F = np.vstack([s.F for s in sets]) if F is None else F
    Fv = np.vstack([s.Fv for s in sets]) if Fv is None else Fv
    return Draws(F, Fv, logw0, sum(s.reference for s in sets), None, control, any(s.steep for s in sets))


def pooled(saddle, Ws):
    """(F, Fv, [rows of each W]): the features of the neuron sets Ws (features), written one set after the other
    into one array, so that the sets' features are views of their union's rather than copied into it."""
    n = np.cumsum([0] + [len(W) for W in Ws])
    F, Fv = np.empty((n[-1], saddle.X_all.shape[0])), np.empty((n[-1], saddle.X_all.shape[0] - saddle.P))
    rows = [slice(a, b) for a, b in zip(n[:-1], n[1:])]
    for W, r in zip(Ws, rows):
        features(saddle, W, F[r], Fv[r])
    return F, Fv, rows


def features(saddle, W, F=None, Fv=None):
    """(train features | smoothed test features, plain test features) of the neurons W (rows), written into F
    and Fv where given."""
    P = saddle.P
    F = saddle._phi(W, F)
    Fv = np.empty((len(W), F.shape[1] - P)) if Fv is None else Fv
    Fv[...] = F[:, P:]
    split = saddle.test_split()
    Fs = np.empty_like(Fv)
    saddle._model.smoothed_features(np.ascontiguousarray(W @ split[0].T), split[1], saddle._act, Fs)
    F[:, P:] = Fs
    return F, Fv


def moments(saddle, F, Fv):
    """(C, C*, c**) as draw means (rows pre-scaled for weights)."""
    C, Cs, _ = saddle._moments.empirical_moments(F[:, :saddle.P], F[:, saddle.P:])
    css = saddle._moments.empirical_moments(F[:, :0], Fv)[2]
    return C, Cs, css


def mala_set(saddle, Ct0, draws, seed, keep=False):
    """MALA (or reweighted prior) draws of q_{Ct0}; the neurons themselves only if `keep`."""
    _, w, how, _, W = tilted_draws(saddle.X_all, saddle.P, Ct0, saddle.g_w, saddle.activation, draws, seed,
                                   neurons=True)
    W = np.ascontiguousarray(W)
    return Draws(*features(saddle, W), np.log(w / w.sum()), _ess(w), W if keep else None, (0.0, 0.0, 0.0)), how


def mala_sets(saddle, Ct0, draws, seeds):
    """(the sets of mala_set for each seed, their union), the sets' features rows of the union's (pooled)."""
    drawn = [tilted_draws(saddle.X_all, saddle.P, Ct0, saddle.g_w, saddle.activation, draws, s, neurons=True)
             for s in seeds]
    F, Fv, rows = pooled(saddle, [np.ascontiguousarray(d[4]) for d in drawn])
    sets = [Draws(F[r], Fv[r], np.log(d[1] / d[1].sum()), _ess(d[1]), None, (0.0, 0.0, 0.0))
            for d, r in zip(drawn, rows)]
    return sets, union(sets, F, Fv)


def gaussian_sets(saddle, Sigma, Ct0, draws, seeds):
    """(the sets of gaussian_set for each seed, their union), the sets' features rows of the union's (pooled)."""
    n, columns = draws * len(seeds), saddle.X_all.shape[0]
    F, Fv = np.empty((n, columns)), np.empty((n, columns - saddle.P))
    exact = gaussian_moments(saddle, Sigma)
    rows = [slice(k * draws, (k + 1) * draws) for k in range(len(seeds))]
    sets = [gaussian_set(saddle, Sigma, Ct0, draws, s, F[r], Fv[r], exact) for s, r in zip(seeds, rows)]
    return sets, union(sets, F, Fv)


def gaussian_set(saddle, Sigma, Ct0, draws, seed, F=None, Fv=None, exact=None):
    """Draws of G = N(0, Sigma) weighted to q_{Ct0}, their control variate E_G[phi phi^T] (exact) minus their
    plain mean of phi phi^T; features written into F and Fv where given, E_G[phi phi^T] taken from `exact`."""
    Z, u, W = gaussian_draws(saddle, Sigma, draws, seed)
    F, Fv = features(saddle, W, F, Fv)
    logw0 = log_weights(Z, u, F[:, :saddle.P], Ct0)
    exact = gaussian_moments(saddle, Sigma) if exact is None else exact
    control = tuple(np.asarray(g) - p for g, p in zip(exact, moments(saddle, F, Fv)))
    return Draws(F, Fv, logw0, float(draws), None, control)


def gaussian_moments(saddle, Sigma):
    """E_G[phi phi^T] over the training and test points, G = N(0, Sigma): the NNGP kernels of X Sigma X^T
    (generated)."""
    L = np.linalg.cholesky(Sigma)
    Xt = saddle.X_all[saddle.P:]
    K, ks, kss = generated.nngp_kernels().input_kernels(saddle.X @ L, Xt @ L, float(saddle.D))
    mod = generated.nngp_kernels()
    if saddle.activation == "linear":
        return K, ks, kss
    return phi_kernels(mod, mod.ACTIVATIONS.index(saddle.activation), K, ks, kss)
