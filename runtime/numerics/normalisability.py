"""Whether the adapted single-neuron law q(w) ∝ N(w; 0, g_w/D) exp(phi(Xw)^T Ct phi(Xw)) can be normalised
(docs/theory.md §6): along the ray w = t v the tilt grows like t^2 phi(Xv)^T Ct phi(Xv) for linear and relu
phi and must stay below the prior's t^2 D/(2 g_w) for every unit v.
"""
from __future__ import annotations

import numpy as np

from msat import generated

#: fixed directions of highest tilt refined by ascent in the relu check
ASCENT_STARTS = 16


def normalisable(saddle, Ct):
    """Whether q(w) can be normalised: max over unit v of the tilt phi(Xv)^T Ct phi(Xv) along
    the ray w = t v must stay below the prior's D/(2 g_w) (docs/theory.md §6). Exact for linear phi
    (an eigenvalue), for relu a search: fixed random directions, the best of them refined by
    gradient ascent on the sphere (a deterministic function of Ct; a lower bound on the maximum, so
    a necessary condition), always true for bounded phi (erf). Returns (ok, ratio)."""
    limit = saddle.tilt_limit
    if saddle.activation == "linear":
        ratio = float(np.linalg.eigvalsh(saddle.X.T @ Ct @ saddle.X)[-1]) / limit
    elif saddle.activation == "relu":
        if not hasattr(saddle, "_directions"):
            V = np.random.default_rng(12345).standard_normal((4096, saddle.D))
            saddle._directions = np.empty((V.shape[0], saddle.P))  # phi(X v) for unit directions v
            saddle._model.features(saddle.X, V / np.linalg.norm(V, axis=1)[:, None], saddle._act,
                                   saddle._directions)
        F = saddle._directions
        tilts = generated.deep_linear_adaptation().tilt(F, np.ascontiguousarray(Ct))[:, 0]
        ratio = max(float(np.max(tilts)), ray_ascent(saddle, Ct, np.argsort(tilts)[-ASCENT_STARTS:])) / limit
    else:
        return True, 0.0
    return ratio < 1.0, ratio


def ray_ascent(saddle, Ct, starts, steps=40):
    """The largest tilt phi(Xv)^T Ct phi(Xv) over unit v reached by projected gradient ascent from the
    fixed directions `starts`, all climbing in one batch (the gradient along w is X^T of the generated tilt
    gradient in the preactivations; the prior's part of log q is radial and drops out on the sphere)."""
    V0 = np.random.default_rng(12345).standard_normal((4096, saddle.D))[starts]
    layer = generated.deep_linear_adaptation()
    Ct = np.ascontiguousarray(Ct)
    V = V0 / np.linalg.norm(V0, axis=1)[:, None]
    if not len(V):
        return -np.inf
    Phi, dPhi = np.empty((len(V), saddle.P)), np.empty((len(V), saddle.P))

    def tilts(V):
        saddle._model.features_and_slopes(np.ascontiguousarray(V @ saddle.X.T), saddle._act, Phi, dPhi)
        return layer.tilt(Phi, Ct)[:, 0]

    # every start climbs alone (its own step size, a step kept only where its tilt rises), all in one batch;
    # the gradient along w is X^T of the generated gradient in h (the prior's part is radial: projected out)
    t, eta = tilts(V), np.full(len(V), 0.1)
    for _ in range(steps):
        tilts(V)
        G = layer.tilt_gradient(Phi, dPhi, Ct) @ saddle.X
        G -= np.sum(G * V, axis=1)[:, None] * V
        cand = V + eta[:, None] * G
        cand /= np.linalg.norm(cand, axis=1)[:, None]
        tc = tilts(cand)
        up = tc > t
        V[up], t[up] = cand[up], tc[up]
        eta = np.where(up, eta * 1.5, eta * 0.5)
    return float(np.max(t))
