"""MALA chains under the adapted single-neuron law q(w) ∝ N(w; 0, g_w/D) exp(phi(Xw)^T Ct phi(Xw))
(docs/theory.md §2b, §6). The integrator is plumbing; log q and its gradient are the generated
model's (msat.generated.densities.neuron_log_densities, every activation)."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from msat.generated.densities import ACTIVATIONS, neuron_log_densities, ray_radius_law

#: the activations with phi(t h) = t phi(h) for t > 0, whose radius along a ray mala_chains may draw exactly
HOMOGENEOUS_ACTS = (ACTIVATIONS.index("linear"), ACTIVATIONS.index("relu"))


def tune(eps, acceptance):
    """Step sizes moved towards MALA's optimal acceptance (~0.57), by at most a factor e^0.5."""
    return eps * np.exp(np.clip(acceptance - 0.57, -0.5, 0.5))


@njit(cache=True)
def mala_chains(W, X, Ct, D, g_w, act, step, n_steps, n_burn, thin, seed, accepted, log_q, samples, radial=0):
    """Update the chains W (chains x D) in place by n_steps MALA steps each (step sizes ``step``),
    count accepted moves, store the final log q, and record every thin-th state after n_burn steps
    into the rows of ``samples``, chain by chain (chain i's states are a contiguous block of rows);
    returns the number of rows written. The chains move in lockstep, so that each step evaluates log q
    and its gradient for all of them in three matrix products (densities.neuron_log_densities: the
    tilt's Ct phi is O(P^2) per chain, a scalar loop over chains pays it at a fraction of BLAS's
    speed). Draws come from numba's global generator seeded with ``seed``.

    With ``radial`` = k > 0 (only for phi with phi(t h) = t phi(h), t > 0: linear, relu) every k-th step is
    followed by an exact Gibbs draw of each chain's radius given its direction u (docs/theory.md §6): along the
    ray q ∝ r^(d-1) exp(-a(u) r^2) with a(u) = log q(0) - log q(u), so r^2 is Gamma (densities.ray_radius_law). Near the
    normalisability edge q's rays are long (a small) and Langevin steps cross them slowly."""
    if radial > 0 and act != HOMOGENEOUS_ACTS[0] and act != HOMOGENEOUS_ACTS[1]:
        raise ValueError("mala_chains: exact radius draws need a positively homogeneous phi (linear, relu)")
    np.random.seed(seed)
    n_chains, Dw = W.shape
    XT = np.ascontiguousarray(X.T)
    Ct = np.ascontiguousarray(Ct)  # the BLAS products want contiguous operands
    recorded = (n_steps - n_burn + thin - 1) // thin if n_steps > n_burn else 0
    per = min(recorded, samples.shape[0] // n_chains) if n_chains else 0  # rows of samples per chain
    lq = np.empty(n_chains)
    grad = np.empty((n_chains, Dw))
    neuron_log_densities(W, XT, Ct, D, g_w, act, lq, grad)
    W_new = np.empty((n_chains, Dw))
    lq_new = np.empty(n_chains)
    grad_new = np.empty((n_chains, Dw))
    k = 0
    for t in range(n_steps):
        for i in range(n_chains):
            s = math.sqrt(2.0 * step[i])
            for d in range(Dw):
                W_new[i, d] = W[i, d] + step[i] * grad[i, d] + s * np.random.standard_normal()
        neuron_log_densities(W_new, XT, Ct, D, g_w, act, lq_new, grad_new)
        for i in range(n_chains):
            # Metropolis-Hastings with the Langevin proposal densities
            eps = step[i]
            fwd = 0.0
            bwd = 0.0
            for d in range(Dw):
                r_f = W_new[i, d] - W[i, d] - eps * grad[i, d]
                r_b = W[i, d] - W_new[i, d] - eps * grad_new[i, d]
                fwd += r_f * r_f
                bwd += r_b * r_b
            log_acc = lq_new[i] - lq[i] - (bwd - fwd) / (4.0 * eps)
            if log_acc >= 0.0 or np.random.random() < math.exp(log_acc):
                for d in range(Dw):
                    W[i, d] = W_new[i, d]
                    grad[i, d] = grad_new[i, d]
                lq[i] = lq_new[i]
                accepted[i] += 1
        if radial > 0 and (t + 1) % radial == 0:
            _radial_gibbs(W, XT, Ct, D, g_w, act, lq, grad)
        if t >= n_burn and (t - n_burn) % thin == 0 and k < per:
            for i in range(n_chains):
                for d in range(Dw):
                    samples[i * per + k, d] = W[i, d]
            k += 1
    for i in range(n_chains):
        log_q[i] = lq[i]
    return n_chains * k


@njit(cache=True)
def _radial_gibbs(W, XT, Ct, D, g_w, act, lq, grad):
    """Each row of W moved to an exact draw of q along its own ray (mala_chains' `radial`); lq, grad refreshed."""
    n, d = W.shape
    U = np.empty((n + 1, d))
    radius = np.empty(n)
    for i in range(n):
        r = 0.0
        for k in range(d):
            r += W[i, k] * W[i, k]
        radius[i] = math.sqrt(r)
        for k in range(d):
            U[i, k] = W[i, k] / radius[i] if radius[i] > 0.0 else 0.0
    for k in range(d):
        U[n, k] = 0.0
    lu = np.empty(n + 1)
    neuron_log_densities(U, XT, Ct, D, g_w, act, lu, np.empty((n + 1, d)))
    for i in range(n):
        a = lu[n] - lu[i]
        if radius[i] > 0.0 and a > 0.0:  # a <= 0: q is not normalisable along this ray; the chain keeps its place
            shape, scale = ray_radius_law(float(d), a)  # of r^2
            r = math.sqrt(np.random.gamma(shape, scale))
            for k in range(d):
                W[i, k] = U[i, k] * r
    neuron_log_densities(W, XT, Ct, D, g_w, act, lq, grad)
