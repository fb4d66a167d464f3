"""Monte Carlo cumulants of the tilted neuron law for the kernel field's one loop (docs/theory.md §2e).

Draws of one neuron's features phi over the training and test points under q(w) ∝ N(w; 0, g_w/D)
exp(phi^T Ct phi), with weights summing to one: prior draws reweighted by the tilt (generated.
adaptive_deep_linear.tilt) while their effective sample size stays high, MALA chains of q
(numerics.mala) otherwise. From them u = (phi_p phi_q, phi_p phi*_t) in the field's coordinates
(numerics.field_loop.Coordinates), its weighted covariance W'' and the contraction
W'''[Y]_c = E[(u~^T Y u~) u~_c]. Estimators of moments are plumbing; the loop formula is generated.
"""
from __future__ import annotations

import math

import numpy as np

from msat import generated
from msat.generated import densities

from .field_loop import Coordinates
from .mala import mala_chains, tune

#: the effective sample fraction of reweighted prior draws below which MALA draws are used instead
ESS_MIN = 0.3


class MonteCarloCumulants:
    """W'' and W''' of u from weighted draws (rows of F: features over training then test points).

    u is formed block by block from the features, so memory stays O(BLOCK d + d^2) for any number
    of draws (all M x d at once would be a gigabyte at P = 40)."""

    BLOCK = 4096

    def __init__(self, F, weights, coords: Coordinates):
        self.i, self.j = coords.pairs.T
        self.F, self.w = F, weights / weights.sum()
        self.coords = coords
        self.mean = np.zeros(coords.d)
        for w, U in self._blocks(centred=False):
            self.mean += w @ U

    def _blocks(self, centred=True):
        for s in range(0, len(self.w), self.BLOCK):
            F = self.F[s:s + self.BLOCK]
            U = F[:, self.i] * F[:, self.j]
            yield self.w[s:s + self.BLOCK], (U - self.mean if centred else U)

    def w2(self):
        W = np.zeros((self.coords.d, self.coords.d))
        for w, Ut in self._blocks():
            W += Ut.T @ (Ut * w[:, None])
        return 0.5 * (W + W.T)

    def w3(self, *Ys):
        """W'''[Y] for each Y given, in one pass over the draws (a tuple when several)."""
        d, k = self.coords.d, len(Ys)
        out = np.zeros((d, k))
        Ycat = np.hstack(Ys)
        for w, Ut in self._blocks():
            UY = (Ut @ Ycat).reshape(len(w), k, d)
            q = np.einsum("mkd,md->mk", UY, Ut)  # u~^T Y u~ per draw and Y
            out += Ut.T @ (w[:, None] * q)
        return out[:, 0] if k == 1 else tuple(out.T)


def tilted_draws(X_all, P, Ct, g_w, activation, M, seed, neurons=False):
    """(features F of M draws of q over the P training and the test points, weights, how, effective
    sample fraction[, the draws w themselves if `neurons`]): reweighted prior draws, or MALA chains
    when reweighting is too uneven."""
    act = densities.ACTIVATIONS.index(activation)
    D = X_all.shape[1]
    var_w = densities.neuron_scales(D, g_w)[0]
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((M, D)) * math.sqrt(var_w)
    F = np.empty((M, X_all.shape[0]))
    densities.features(X_all, W, act, F)
    logw = generated.deep_linear_adaptation().tilt(F[:, :P], Ct)[:, 0]
    w = np.exp(logw - logw.max())
    ess = float(w.sum() ** 2 / (w @ w) / M)
    if ess >= ESS_MIN:
        return (F, w, "reweighted prior draws", ess) + ((W,) if neurons else ())
    # MALA: 64 chains from the prior draws, a quarter burn-in, states thinned by 4
    n_chains, steps = 64, 4 * int(math.ceil(M / 64)) + 200
    Wc = np.ascontiguousarray(W[:n_chains])
    eps = np.full(n_chains, 0.1 * var_w)
    burn = 200
    acc = np.zeros(n_chains, dtype=np.int64)
    log_q = np.empty(n_chains)
    X = np.ascontiguousarray(X_all[:P])
    for _ in range(3):  # tune the step sizes before recording
        acc[:] = 0
        mala_chains(Wc, X, np.ascontiguousarray(Ct), float(D), g_w, act, eps, 100, 100, 1, int(rng.integers(2**31 - 1)),
                    acc, log_q, np.empty((1, D)))
        eps = tune(eps, acc / 100)
    keep = n_chains * ((steps - burn + 3) // 4)
    samples = np.empty((keep, D))
    acc[:] = 0
    kept = mala_chains(Wc, X, np.ascontiguousarray(Ct), float(D), g_w, act, eps, steps, burn, 4,
                       int(rng.integers(2**31 - 1)), acc, log_q, samples)
    F = np.empty((kept, X_all.shape[0]))
    densities.features(X_all, np.ascontiguousarray(samples[:kept]), act, F)
    out = F, np.ones(kept), "single-neuron MALA", float(np.mean(acc) / steps)
    return out + ((samples[:kept],) if neurons else ())
