"""The prior of the total rescaling u = s_1 s_2 ... s_L of a deep linear network on a grid
(docs/theory.md §2d): tau = ln u is a sum of independent log-Gamma variables, so its density is the
convolution of theirs.

Each layer's density of t_l = ln s_l is tilted by exp(theta t_l), which keeps it log-Gamma (shape
N_l/2 + theta, generated ``layer_mode``, ``layer_log_density``): with theta chosen so that the tilted
densities sit where the posterior is, the grid resolves the part that matters even when the
untilted prior is many of its widths away (chi = N at large N). The densities are sampled on one
grid tau = i h and convolved (trapezoid rule for the convolution integral: geometric convergence
for these analytic, fast-decaying densities); the tilt is undone by the caller.
"""
from __future__ import annotations

import math

import numpy as np

from msat import generated

#: a layer's density is kept where it exceeds exp(-CUT) of its mode
CUT = 70.0
#: above this many grid points the convolution goes through the FFT
DIRECT_MAX = 4000
#: ... whose round-off (~1e-17 of the peak, of either sign) fills the far tails; values under this fraction of
#: the peak are dropped there: undoing the tilt (exp(-theta (tau - tau0)), theta in the hundreds near
#: mean-field scaling at large depth) would raise that noise above the peak (measured: N = 200, 300 layers,
#: chi = N, s_mean 1e-219 for 17.05)
FFT_FLOOR = 1e-12


def _support(k: float, h: float):
    """Index range (relative to the mode, in steps of h) where -k (expm1(d) - d) > -CUT."""
    ends = []
    for sign in (-1.0, 1.0):
        d = 1.0 / math.sqrt(k)
        while -k * (math.expm1(sign * d) - sign * d) > -CUT:
            d *= 1.5
        ends.append(int(math.ceil(d / h)) + 1)
    return ends


def layer_widths(widths, theta: float):
    """(mode, shape k) of each layer's tilted density of ln s_l."""
    mod = generated.exact()
    return [mod.layer_mode(float(N), float(theta)) for N in widths]


def log_density(widths, theta: float, h: float):
    """(i0, log p) with p the tilted density of tau = ln u at tau = (i0 + i) h, i = 0.. (up to a
    constant; -inf where it underflows)."""
    mod = generated.exact()
    start, conv = 0, np.ones(1)
    for mode, k in layer_widths(widths, theta):
        left, right = _support(k, h)
        centre = int(round(mode / h))
        idx = np.arange(centre - left, centre + right + 1)
        logp = np.empty(idx.shape[0])
        mod.layer_log_density(idx * h - mode, k, logp)
        p = np.exp(logp)
        if conv.size * p.size <= DIRECT_MAX**2:
            conv = np.convolve(conv, p)
        else:
            from scipy.signal import fftconvolve  # scipy.signal takes 1.7 s to import: only where needed

            conv = fftconvolve(conv, p)
            conv[conv < FFT_FLOOR * conv.max()] = 0.0
        conv = np.maximum(conv, 0.0)
        # each layer's factor scales the peak by about sqrt(2 pi / k) / h: unless rescaled after every layer,
        # a few hundred layers underflow to zero everywhere (log p is only needed up to a constant)
        conv /= conv.max()
        start += idx[0]
    with np.errstate(divide="ignore"):
        return start, np.log(conv)
