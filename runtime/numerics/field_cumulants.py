"""Monte Carlo cumulants of the tilted neuron law for the kernel field's one loop (docs/theory.md §2e).

Draws of one neuron's features phi over the training and test points under q(w) ∝ N(w; 0, g_w/D)
exp(phi^T Ct phi), with weights summing to one: prior draws (scrambled Sobol' points, numerics.normals)
reweighted by the tilt (generated.adaptive_deep_linear.tilt) while their effective sample size stays
high, MALA chains of q (numerics.mala) otherwise. From them u = (phi_p phi_q, phi_p phi*_t) in the
field's coordinates (numerics.field_loop.Coordinates), its weighted covariance W'' and the contraction
W'''[Y]_c = E[(u~^T Y u~) u~_c]. Estimators of moments are plumbing; the loop formula is generated.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg.blas import dsyrk as syrk

from msat import generated
from msat.generated import densities

from .field_loop import Coordinates
from .mala import mala_chains, tune
from .normalisability import HOMOGENEOUS, ray_features, ray_ratio
from .normals import standard_normals
from .proposal import TAIL_MAX, ess, tail_index

#: the effective sample fraction of reweighted prior draws below which MALA draws are used instead
ESS_MIN = 0.3


def prior_reaches(w, frac, tail=TAIL_MAX, shape=None):
    """Whether prior draws with weights w to q (effective fraction frac) estimate its moments: frac at least
    ESS_MIN and the weights' upper tail lighter than Pareto shape `tail` (relu's tilt grows like |w|^2, and
    where q is wider than the prior in some direction the weights' variance is infinite; docs/theory.md §2e),
    both the shape fitted to w and `shape()`, the one known in closed form (weight_tail; asked only where the
    rest holds: its search costs a second at P = 1000). Draws whose replicas' spread is a reported error ask
    for TAIL_FINAL (the field's loop)."""
    return frac >= ESS_MIN and tail_index(w) < tail and (shape is None or shape() < tail)


def weight_tail(X_all, P, Ct, g_w, activation):
    """The Pareto shape of the upper tail of prior draws' weights to q where it is known in closed form: for
    homogeneous phi (linear, relu) the largest tilt/prior on a ray (normalisability.ray_ratio; docs/theory.md
    §6), which the fit on a few thousand draws reads low near 1/2; -inf for other phi (the fit alone decides).
    Once per field: the loop asks at its first draws and again for each draw set."""
    if activation not in HOMOGENEOUS:
        return -math.inf
    X, Ct, data = X_all[:P], np.ascontiguousarray(Ct), data_key(X_all, P, g_w, activation)
    rays = _cached(data, ("rays",), lambda: ray_features(X, densities.ACTIVATIONS.index(activation)))
    return _cached(data, ("tail", hash(Ct.tobytes())),
                   lambda: ray_ratio(X, Ct, densities.neuron_scales(X.shape[1], g_w)[1], activation, rays))


class MonteCarloCumulants:
    """W'' and W''' of u from weighted draws (rows of F: features over training then test points).

    u is formed block by block from the features, so memory stays O(BLOCK d + d^2) for any number
    of draws (all M x d at once would be a gigabyte at P = 40). A union of draw sets (``union``) pools
    the sets' means and W'' exactly, and its W''' along a direction follows exactly from the sets' own
    (``pooled_w3``), so the draws are passed over once for W'' and once for W'''."""

    BLOCK = 4096
    control = None  # (prior, plain) where the prior's cumulants are a control variate (PriorControlled)

    def __init__(self, F, weights, coords: Coordinates):
        self.coords = coords
        w = weights / weights.sum()
        self.parts = [(F, w)]
        self.mean = coords.t_project(F.T @ (F * w[:, None]))  # E[phi phi^T] read at u's coordinates
        self._w2 = None

    @classmethod
    def union(cls, sets, shares=None):
        """The cumulants of the draw sets together, set r carrying the share s_r of the total weight
        (equal shares unless `shares`, which are normalised; draws of one law pool best with shares in
        proportion to their numbers). Mean and W'' are pooled from the sets' own:
        W''_union = sum_r s_r (W''_r + (m_r - m)(m_r - m)^T)."""
        self = cls.__new__(cls)
        self.coords = sets[0].coords
        s = np.full(len(sets), 1.0 / len(sets)) if shares is None else np.asarray(shares, float) / np.sum(shares)
        self.parts = [(F, sr * w) for c, sr in zip(sets, s) for F, w in c.parts]
        self.mean = sum(sr * c.mean for c, sr in zip(sets, s))
        W = np.zeros((self.coords.d, self.coords.d))
        for c, sr in zip(sets, s):
            dm = c.mean - self.mean
            W += sr * (c.w2() + np.outer(dm, dm))
        W[self.coords.unread()] = 0.0  # as the sets' own (w2)
        self._w2 = W
        if all(c.control for c in sets):  # the control pools as the draws do: sum_r s_r (prior_r - plain_r)
            self.control = tuple(cls.union([c.control[i] for c in sets], shares=s) for i in range(2))
        return self

    def retilted(self, P, dCt):
        """The same draws reweighted by exp(phi^T dCt phi) (phi on the P training points): the cumulants of
        the tilted law at Ct + dCt from draws of the law at Ct, with the same control variate if these have one
        (near the prior the reweighted draws' noise cancels against the same draws' plain moments as before)."""
        F = np.vstack([Fp for Fp, _ in self.parts])
        tilt = generated.deep_linear_adaptation().tilt(F[:, :P], dCt)[:, 0]
        w = np.concatenate([wp for _, wp in self.parts]) * np.exp(tilt - tilt.max())
        out = MonteCarloCumulants(F, w, self.coords)
        return out.with_control(*self.control) if self.control else out

    def with_control(self, prior, plain):
        """These cumulants' mean and W'' with the prior's as a control variate (field_controls.PriorControlled):
        the raw moments of these draws, minus the same draws' unweighted ones (`plain`), plus the prior's
        (`prior`, independent draws); in place, returns self."""
        raw = lambda x: x.w2() + np.outer(x.mean, x.mean)  # noqa: E731  (second moment about zero)
        second = raw(self) - raw(plain) + raw(prior)
        self.mean = self.mean - plain.mean + prior.mean
        self._w2 = second - np.outer(self.mean, self.mean)
        self._w2[self.coords.unread()] = 0.0  # as the draws' own (w2)
        self.control = (prior, plain)
        return self

    @property
    def n_draws(self):
        return sum(len(w) for _, w in self.parts)

    def _products(self, F, k):
        """The first k coordinates of u = (phi_p phi_q for p <= q, phi_p phi*_t, phi*_t^2) per row of F,
        built from contiguous slices (a gather of both factors costs twice as much)."""
        P, Q, dtr, dm = self.coords.P, self.coords.Q, self.coords.dtr, self.coords.dm
        U = np.empty((F.shape[0], self.coords.d if k > dtr else dtr))
        at = 0
        for p in range(P):
            np.multiply(F[:, p:p + 1], F[:, p:P], out=U[:, at:at + P - p])
            at += P - p
        for r in range(P if Q and k > dtr else 0):
            np.multiply(F[:, r:r + 1], F[:, P:P + Q], out=U[:, dtr + r * Q:dtr + (r + 1) * Q])
        if Q and k > dtr:
            np.multiply(F[:, P:P + Q], F[:, P:P + Q], out=U[:, dm:dm + Q])
        return U[:, :k]

    def _blocks(self, k=None):
        """(features, weights, centred u on the first k coordinates) block by block."""
        k = self.coords.d if k is None else k
        for F, w in self.parts:
            for s in range(0, len(w), self.BLOCK):
                U = self._products(F[s:s + self.BLOCK], k)
                U -= self.mean[:k]
                yield F[s:s + self.BLOCK], w[s:s + self.BLOCK], U

    def w2(self):
        """W'' = E[u~ u~^T] (d x d) on the blocks the loop reads: every pair with a training coordinate, and
        each test point's own block of C*_pt C*_qt. The rest, pairs of C*'s of different test points and c**_t
        with any but a training coordinate, is left zero and not estimated: field_loop.OneLoop's every product
        with it meets exact zeros (its outputs are the same to the bit with any values there; tests). With
        many test points that rest is most of W'' (P = 32, 64 test points: 0.63 of it)."""
        if self._w2 is None:
            c = self.coords
            P, Q, dtr, dm, d = c.P, c.Q, c.dtr, c.dm, c.d
            Wtt = np.zeros((dtr, dtr), order="F")
            Wrt = np.zeros((d - dtr, dtr))
            Wss = np.zeros((Q, P, P))
            for _, w, Ut in self._blocks():
                Ut *= np.sqrt(w)[:, None]
                Utr = Ut[:, :dtr]
                # the lower triangle of sum_m w_m u~_m u~_m^T on the training block, in place: half the flops
                Wtt = syrk(1.0, Utr.T, beta=1.0, c=Wtt, trans=0, lower=1, overwrite_c=1)
                Wrt += Ut[:, dtr:].T @ Utr
                S = Ut[:, dtr:dm].reshape(len(w), P, Q)
                for t in range(Q):
                    V = np.ascontiguousarray(S[:, :, t])
                    Wss[t] += V.T @ V
            W = np.zeros((d, d))
            W[:dtr, :dtr] = np.tril(Wtt) + np.tril(Wtt, -1).T
            W[dtr:, :dtr] = Wrt
            W[:dtr, dtr:] = Wrt.T
            own = c.own_blocks()
            W[own[:, :, None], own[:, None, :]] = Wss
            self._w2 = W
        return self._w2

    def w3(self, Y):
        """W'''[Y]_c = E[(u~^T Y u~) u~_c] for Y given on the first k coordinates (zero elsewhere), in
        one pass over the draws. E[q u~] for q = u~^T Y u~ is read off E[q phi phi^T] (an n x n
        product), so u is formed on the first k coordinates only."""
        k, n = len(Y), self.coords.P + self.coords.Q
        S, total = np.zeros((n, n)), 0.0
        for F, w, Uk in self._blocks(k):
            wq = w * np.einsum("md,md->m", Uk @ Y, Uk)  # w times u~^T Y u~, per draw
            S += F.T @ (F * wq[:, None])
            total += wq.sum()
        return self.coords.t_project(S) - total * self.mean

    @staticmethod
    def pooled_w3(sets, union, Y):
        """(each set's W'''[Y], the union's W'''[Y]) from one pass over every set's draws. A set's
        contraction is centred at its own mean; the union's follows exactly from the sets' with
        d_r = m_r - m (m the union's mean, k the coordinates Y is given on):
        W'''_u[Y] = sum_r s_r (W'''_r[Y] + tr(Y W''_r,kk) d_r + 2 W''_r,:k Y d_r,k + (d_r,k^T Y d_r,k) d_r).
        Y lies on the training coordinates (k <= dtr), as the loop's does: W'' is estimated only where it reads."""
        k, s = len(Y), 1.0 / len(sets)
        if k > union.coords.dtr:
            raise ValueError(f"pooled_w3 takes Y on the {union.coords.dtr} training coordinates at most, not {k}")
        per_set, total = [], np.zeros(union.coords.d)
        for c in sets:
            w3 = c.w3(Y)
            dm = c.mean - union.mean
            W = c.w2()
            Yd = Y @ dm[:k]
            total += s * (w3 + np.sum(Y * W[:k, :k]) * dm + 2.0 * (W[:, :k] @ Yd) + (dm[:k] @ Yd) * dm)
            per_set.append(w3)
        return per_set, total


def prior_features(X_all, g_w, activation, M, seed):
    """(features F over all points, neurons W) of M prior draws (scrambled Sobol' points)."""
    D = X_all.shape[1]
    W = standard_normals(seed, M, D) * math.sqrt(densities.neuron_scales(D, g_w)[0])
    F = np.empty((M, X_all.shape[0]))
    densities.features(X_all, W, densities.ACTIVATIONS.index(activation), F)
    return F, W


def reweighted_prior(X_all, P, Ct, g_w, activation, M, seed):
    """(features F, tilt weights, effective sample fraction, neurons W) of M prior draws (scrambled
    Sobol' points; `seed` an int or a numpy Generator) reweighted to q."""
    F, W = prior_features(X_all, g_w, activation, M, seed)
    logw = generated.deep_linear_adaptation().tilt(F[:, :P], Ct)[:, 0]
    w = np.exp(logw - logw.max())
    return F, w, ess(w) / M, W


def tilted_draws(X_all, P, Ct, g_w, activation, M, seed, neurons=False, tail=TAIL_MAX):
    """(features F of M draws of q over the P training and the test points, weights, how, effective
    sample fraction[, the draws w themselves if `neurons`]): reweighted prior draws, or MALA chains
    where their weights are too uneven or heavy-tailed (prior_reaches, with the Pareto bound `tail`)."""
    act = densities.ACTIVATIONS.index(activation)
    D = X_all.shape[1]
    var_w = densities.neuron_scales(D, g_w)[0]
    rng = np.random.default_rng(seed)
    F, w, frac, W = reweighted_prior(X_all, P, Ct, g_w, activation, M, rng)
    if prior_reaches(w, frac, tail, lambda: weight_tail(X_all, P, Ct, g_w, activation)):
        return (F, w, "reweighted prior draws", frac) + ((W,) if neurons else ())
    # MALA: 64 chains from the prior draws, a quarter burn-in, states thinned by 4
    n_chains, steps = 64, 4 * int(math.ceil(M / 64)) + 200
    Wc = np.ascontiguousarray(W[:n_chains])
    eps = np.full(n_chains, 0.1 * var_w)
    burn = 200
    acc = np.zeros(n_chains, dtype=np.int64)
    log_q = np.empty(n_chains)
    X = np.ascontiguousarray(X_all[:P])
    # homogeneous phi: every fourth step an exact draw of the radius along each chain's ray (MALA alone crosses the
    # long rays of q near the normalisability edge too slowly: benchmarks/relu_heavy_rays.py)
    radial = 4 if activation in HOMOGENEOUS else 0
    for _ in range(3):  # tune the step sizes before recording
        acc[:] = 0
        mala_chains(Wc, X, np.ascontiguousarray(Ct), float(D), g_w, act, eps, 100, 100, 1, int(rng.integers(2**31 - 1)),
                    acc, log_q, np.empty((1, D)), radial)
        eps = tune(eps, acc / 100)
    keep = n_chains * ((steps - burn + 3) // 4)
    samples = np.empty((keep, D))
    acc[:] = 0
    kept = mala_chains(Wc, X, np.ascontiguousarray(Ct), float(D), g_w, act, eps, steps, burn, 4,
                       int(rng.integers(2**31 - 1)), acc, log_q, samples, radial)
    F = np.empty((kept, X_all.shape[0]))
    densities.features(X_all, np.ascontiguousarray(samples[:kept]), act, F)
    out = F, np.ones(kept), "single-neuron MALA", float(np.mean(acc) / steps)
    return out + ((samples[:kept],) if neurons else ())


_CACHE: dict = {"data": None}


def _cached(data, key, make):
    """make() once per key while the data set stays the same (a chi ladder asks again at every point)."""
    if _CACHE["data"] != data:
        _CACHE.clear()
        _CACHE["data"] = data
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def data_key(X_all, P, g_w, activation):
    return (hash(X_all.tobytes()), X_all.shape, P, float(g_w), activation)
