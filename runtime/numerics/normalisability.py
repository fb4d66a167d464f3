"""Whether the adapted single-neuron law q(w) ∝ N(w; 0, g_w/D) exp(phi(Xw)^T Ct phi(Xw)) can be normalised
(docs/theory.md §6): along the ray w = t v the tilt grows like t^2 phi(Xv)^T Ct phi(Xv) for linear and relu
phi and must stay below the prior's t^2 D/(2 g_w) for every unit v.
"""
from __future__ import annotations

import numpy as np

from msat import generated
from msat.generated import densities

#: fixed directions of highest tilt refined by ascent in the relu check
ASCENT_STARTS = 16
#: relu: a tilt/prior from this on (q's tail along a ray over 4.5 prior widths) is warned of as near the edge: there
#: short MALA chains' directions relax slowly (at 0.95, D = 2, sets on msat's schedule sat 2.4-3 of their errors
#: under q's radial quadrature of E_q|w|^2 after a burn-in of 200 or 2,200 steps, not after 20,000)
NEAR_EDGE = 0.95
#: activations with phi(t x) = t phi(x) for t > 0: along each ray w = t v their tilt is exactly t^2 times that of v
HOMOGENEOUS = ("linear", "relu")


def normalisable(saddle, Ct):
    """Whether q(w) can be normalised: ray_ratio below 1 (docs/theory.md §6), with the relu search's fixed
    directions kept on the saddle. Returns (ok, ratio)."""
    if saddle.activation == "relu" and not hasattr(saddle, "_directions"):
        saddle._directions = ray_features(saddle.X, saddle._act)
    ratio = ray_ratio(saddle.X, Ct, saddle.tilt_limit, saddle.activation, getattr(saddle, "_directions", None))
    return ratio < 1.0, ratio


def unit_directions(D):
    """The fixed random unit directions the relu search starts from (a deterministic set)."""
    V = np.random.default_rng(12345).standard_normal((4096, D))
    return V / np.linalg.norm(V, axis=1)[:, None]


def ray_features(X, act):
    """phi(X v) for the fixed unit directions v (rows; `act` the index in densities.ACTIVATIONS)."""
    V = unit_directions(X.shape[1])
    F = np.empty((V.shape[0], X.shape[0]))
    densities.features(X, V, act, F)
    return F


def ray_ratio(X, Ct, tilt_limit, activation, directions=None):
    """max over unit v of the tilt phi(Xv)^T Ct phi(Xv) along the ray w = t v, over the prior's
    D/(2 g_w) (`tilt_limit`; docs/theory.md §6). Exact for linear phi (an eigenvalue), for relu a search:
    fixed random directions (`directions`: their ray_features, else computed), the best of them refined by
    gradient ascent on the sphere (a deterministic function of Ct; a lower bound on the maximum), 0 for
    bounded phi (erf: q always exists). For homogeneous phi it is also the Pareto shape of the upper tail of
    prior draws' weights to q (docs/theory.md §6)."""
    if activation == "linear":
        return float(np.linalg.eigvalsh(X.T @ Ct @ X)[-1]) / tilt_limit
    if activation != "relu":
        return 0.0
    act = densities.ACTIVATIONS.index(activation)
    F = ray_features(X, act) if directions is None else directions
    tilts = generated.deep_linear_adaptation().tilt(F, np.ascontiguousarray(Ct))[:, 0]
    return max(float(np.max(tilts)), ray_ascent(X, act, Ct, np.argsort(tilts)[-ASCENT_STARTS:])) / tilt_limit


def ray_ascent(X, act, Ct, starts, steps=40):
    """The largest tilt phi(Xv)^T Ct phi(Xv) over unit v reached by projected gradient ascent from the
    fixed directions `starts`, all climbing in one batch (the gradient along w is X^T of the generated tilt
    gradient in the preactivations; the prior's part of log q is radial and drops out on the sphere)."""
    V = unit_directions(X.shape[1])[starts]
    layer = generated.deep_linear_adaptation()
    Ct = np.ascontiguousarray(Ct)
    if not len(V):
        return -np.inf
    P = X.shape[0]
    Phi, dPhi = np.empty((len(V), P)), np.empty((len(V), P))

    def tilts(V):
        densities.features_and_slopes(np.ascontiguousarray(V @ X.T), act, Phi, dPhi)
        return layer.tilt(Phi, Ct)[:, 0]

    # every start climbs alone (its own step size, a step kept only where its tilt rises), all in one batch;
    # the gradient along w is X^T of the generated gradient in h (the prior's part is radial: projected out)
    t, eta = tilts(V), np.full(len(V), 0.1)
    for _ in range(steps):
        tilts(V)
        G = layer.tilt_gradient(Phi, dPhi, Ct) @ X
        G -= np.sum(G * V, axis=1)[:, None] * V
        cand = V + eta[:, None] * G
        cand /= np.linalg.norm(cand, axis=1)[:, None]
        tc = tilts(cand)
        up = tc > t
        V[up], t[up] = cand[up], tc[up]
        eta = np.where(up, eta * 1.5, eta * 0.5)
    return float(np.max(t))
