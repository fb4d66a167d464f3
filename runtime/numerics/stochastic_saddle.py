"""The damped stochastic iteration of the single-neuron saddle (docs/theory.md §6): each step of the
fixed point C <- E_q[phi phi^T], q = q_Ct(C), sees fresh MALA draws (numerics.mala). It gets near the
saddle from a cold start, ramping chi from the warm start's; numerics.reweighted_saddle then solves
the saddle on fixed draws. Alone (n_fixed = 0) it stalls short of the saddle where the map is steep.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConvergenceError
from ..progress import status
from .mala import mala_chains, tune

#: E_q|w|^2 beyond this multiple of its prior mean counts as a diverging single-neuron law
DIVERGENCE = 1e3


def mala_moments(saddle, Ct, chains, steps, seed, burn=0, thin=1):
    """(C, C*, c**) from `steps` MALA steps of the chains (W, eps) under q_Ct (updated in place, step
    sizes tuned), and the acceptance; raises where the chains diverge."""
    W, eps = chains
    n_keep = W.shape[0] * max((steps - burn + thin - 1) // thin, 0)
    samples = np.empty((max(n_keep, 1), saddle.D))
    accepted = np.zeros(W.shape[0], dtype=np.int64)
    log_q = np.empty(W.shape[0])
    kept = mala_chains(W, saddle.X, np.ascontiguousarray(Ct), float(saddle.D), saddle.g_w, saddle._act, eps, steps,
                      burn, thin, seed, accepted, log_q, samples)
    if not np.all(np.isfinite(log_q)) or not np.all(np.isfinite(W)):
        raise ConvergenceError(
            "adaptive: single-neuron chains diverged (q(w) not normalisable?)", {})
    acc = accepted / max(steps, 1)
    eps[:] = tune(eps, acc)
    if kept == 0:
        return None, acc
    w2 = float(np.mean(np.sum(samples[:kept] ** 2, axis=1)))
    if not w2 < DIVERGENCE * saddle.mean_w2:
        raise ConvergenceError(
            "adaptive: single-neuron chains drift to large |w| (q(w) not normalisable at this "
            "chi?)", {"mean_w2": w2, "prior_mean_w2": saddle.mean_w2})
    Phi = saddle._phi(samples[:kept])
    C, Cs, css = saddle._moments.empirical_moments(Phi[:, :saddle.P], Phi[:, saddle.P:])
    return (0.5 * (C + C.T), Cs, css), acc


def iterate(saddle, chi, C0, warnings, mc_state):
    """R independent damped iterations from C0 (the NNGP if None); per replicate its outputs, C, C*,
    c** (averages over the last half of the steps at chi) and chain state, and the acceptances."""
    R = saddle.replicates
    per = max(saddle.n_chains // R, 2)
    rng = np.random.default_rng(saddle.seed + int(1000 * chi) % 100003)
    results, accs = [], []
    for r in range(R):
        status(f"self-consistent MALA, replicate {r + 1} of {R}")
        if mc_state is not None and r < len(mc_state):
            W, eps = mc_state[r][0].copy(), mc_state[r][1].copy()
        else:
            W = rng.standard_normal((per, saddle.D)) * math.sqrt(saddle.var_w)
            eps = np.full(per, 0.1 * saddle.var_w)  # a tenth of the prior variance
        C = saddle.Kphi.copy() if C0 is None else C0.copy()
        seed = int(rng.integers(2**31 - 1))
        # ramp chi geometrically from the warm start's chi over the first iterations: the
        # field of an old C at a much larger chi can tilt q(w) past normalisability
        chi0 = saddle._chi_warm if (C0 is not None and saddle._chi_warm) else chi
        n_ramp, n_outer = 6, 18
        eta, d_prev, C_last, history = 0.5, None, None, []
        for it in range(n_outer):
            chi_it = chi0 * (chi / chi0) ** min(1.0, it / n_ramp)
            for _ in range(8):
                A, alpha, Ct = saddle.field(C, chi_it)
                saddle._relu_check(Ct, chi_it, warnings)
                try:
                    ok, ratio = saddle.normalisable(Ct)
                    if not ok:
                        raise ConvergenceError(
                            "adaptive: the single-neuron law q(w) is not normalisable "
                            f"(tilt/prior = {ratio:.3g} > 1, docs/theory.md §6)", {"chi": chi_it})
                    mom, acc = mala_moments(saddle, Ct, (W, eps), saddle.n_steps, seed + it,
                                               burn=saddle.n_steps // 4, thin=4)
                    break
                except ConvergenceError:
                    if C_last is None:
                        raise
                    # the last update overshot into a non-normalisable q: step back
                    C, eta = C_last + 0.5 * (C - C_last), max(0.5 * eta, 0.02)
                    W = rng.standard_normal((per, saddle.D)) * math.sqrt(saddle.var_w)
            else:
                raise ConvergenceError("adaptive: Monte Carlo fixed point keeps diverging",
                                       {"chi": chi_it})
            C_hat, Cs_hat, css_hat = mom
            d = C_hat - C
            if d_prev is not None and float(np.sum(d * d_prev)) < 0:
                eta = max(0.5 * eta, 0.05)  # oscillation: the map's slope is steep, damp more
            d_prev, C_last = d, C
            C = C + eta * d
            if it >= n_ramp:
                history.append((C_hat, Cs_hat, css_hat))
        # average the estimates taken at the target chi over the last half of the iterations
        tail = history[len(history) // 2:]
        avg = [np.mean([h[k] for h in tail], axis=0) for k in range(3)]
        C, Cs, css = avg
        results.append(saddle._outputs(C, Cs, css, chi) | {"C": C, "Cs": Cs, "css": css, "state": (W, eps)})
        accs.append(float(np.mean(acc)))
    return results, accs
