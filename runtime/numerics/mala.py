"""MALA chains under the adapted single-neuron law q(w) ∝ N(w; 0, g_w/D) exp(phi(Xw)^T Ct phi(Xw))
(docs/theory.md §2b, §6). The integrator is plumbing; log q and its gradient are the generated
model's (msat.generated.densities.neuron_log_densities, every activation)."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from msat.generated.densities import neuron_log_densities


def tune(eps, acceptance):
    """Step sizes moved towards MALA's optimal acceptance (~0.57), by at most a factor e^0.5."""
    return eps * np.exp(np.clip(acceptance - 0.57, -0.5, 0.5))


@njit(cache=True)
def mala_chains(W, X, Ct, D, g_w, act, step, n_steps, n_burn, thin, seed, accepted, log_q, samples):
    """Update the chains W (chains x D) in place by n_steps MALA steps each (step sizes ``step``),
    count accepted moves, store the final log q, and record every thin-th state after n_burn steps
    into the rows of ``samples``, chain by chain (chain i's states are a contiguous block of rows);
    returns the number of rows written. The chains move in lockstep, so that each step evaluates log q
    and its gradient for all of them in three matrix products (densities.neuron_log_densities: the
    tilt's Ct phi is O(P^2) per chain, a scalar loop over chains pays it at a fraction of BLAS's
    speed). Draws come from numba's global generator seeded with ``seed``."""
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
        if t >= n_burn and (t - n_burn) % thin == 0 and k < per:
            for i in range(n_chains):
                for d in range(Dw):
                    samples[i * per + k, d] = W[i, d]
            k += 1
    for i in range(n_chains):
        log_q[i] = lq[i]
    return n_chains * k
