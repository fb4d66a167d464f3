"""MALA chains under the adapted single-neuron law q(w) ∝ N(w; 0, g_w/D) exp(phi(Xw)^T Ct phi(Xw))
(docs/theory.md §2b, §6). The integrator is plumbing; log q and its gradient are the generated
model's (msat.generated.densities.neuron_log_density, every activation)."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from msat.generated.densities import neuron_log_density


def tune(eps, acceptance):
    """Step sizes moved towards MALA's optimal acceptance (~0.57), by at most a factor e^0.5."""
    return eps * np.exp(np.clip(acceptance - 0.57, -0.5, 0.5))


@njit(cache=True)
def mala_chains(W, X, Ct, D, g_w, act, step, n_steps, n_burn, thin, seed, accepted, log_q, samples):
    """Update the chains W (chains x D) in place by n_steps MALA steps each (step sizes ``step``),
    count accepted moves, store the final log q, and record every thin-th state after n_burn steps
    into the rows of ``samples``; returns the number of rows written. Draws come from numba's
    global generator seeded with ``seed``."""
    np.random.seed(seed)
    n_chains, Dw = W.shape
    P = X.shape[0]
    work = np.empty((4, P))  # Xw, phi, phi' and Ct phi of one neuron
    steps = np.empty((3, Dw))  # the gradient, the proposal and its gradient
    h, u, du, v = work[0], work[1], work[2], work[3]
    grad, w_new, grad_new = steps[0], steps[1], steps[2]
    n_kept = 0
    for i in range(n_chains):
        w = W[i]
        lq = neuron_log_density(w, X, Ct, D, g_w, act, h, u, du, v, grad)
        eps = step[i]
        for t in range(n_steps):
            for d in range(Dw):
                w_new[d] = w[d] + eps * grad[d] + math.sqrt(2.0 * eps) * np.random.standard_normal()
            lq_new = neuron_log_density(w_new, X, Ct, D, g_w, act, h, u, du, v, grad_new)
            # Metropolis-Hastings with the Langevin proposal densities
            fwd = 0.0
            bwd = 0.0
            for d in range(Dw):
                r_f = w_new[d] - w[d] - eps * grad[d]
                r_b = w[d] - w_new[d] - eps * grad_new[d]
                fwd += r_f * r_f
                bwd += r_b * r_b
            log_acc = lq_new - lq - (bwd - fwd) / (4.0 * eps)
            if log_acc >= 0.0 or np.random.random() < math.exp(log_acc):
                for d in range(Dw):
                    w[d] = w_new[d]
                    grad[d] = grad_new[d]
                lq = lq_new
                accepted[i] += 1
            if t >= n_burn and (t - n_burn) % thin == 0:
                for d in range(Dw):
                    samples[n_kept, d] = w[d]
                n_kept += 1
        log_q[i] = lq
    return n_kept
