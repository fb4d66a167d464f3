"""Kernel specifications of the sampled laws (docs/theory.md §1, §2b, §6, §7): generated/densities.py.

One module for every activation: phi and phi' (derive.activations) behind an activation code,
the network's log posterior and gradient and the observables of one network state (derive.network,
derive.observables), and the single neuron's log density and gradient under the adapted law q(w).
The samplers that use them (HMC over networks, MALA over one neuron) are runtime plumbing.
"""
from __future__ import annotations

import sympy as sp

from .. import activations, network, observables
from ..emit import KernelSpec, Statement, cse_lines


def _activation_parts():
    x, s = sp.Symbol("x", real=True), sp.Symbol("s", real=True)
    out = []
    for code, name in enumerate(activations.ACTIVATIONS):
        ph = activations.phi(name).subs(activations.h, x)
        dph = activations.dphi(name).subs(activations.h, x)
        smooth = activations.smoothed_phi(name).subs({activations.m: x, activations.s: s})
        # s = 0: no Gaussian part, phi itself (the relu form divides by s)
        smooth = sp.Piecewise((ph, s <= 0), (smooth, True))
        out.append({"name": name, "code": code,
                    "phi": cse_lines([Statement("phi_x", ph)], "p_"),
                    "dphi": cse_lines([Statement("dphi_x", dph)], "d_"),
                    "smoothed": cse_lines([Statement("smoothed_x", smooth)], "s_")})
    return out


def densities_spec() -> KernelSpec:
    dell, slope_a, slope_w = network.slopes()
    var_w, var_a = network.prior_variances()
    prec_w, prec_a = network.prior_precisions()
    prior = network.prior_hidden()  # one hidden unit of the network: the same prior
    return KernelSpec(
        name="densities",
        family="densities",
        args=[],
        doc="",
        extra={
            "activations": _activation_parts(),
            "variances": [Statement("var_w", var_w), Statement("var_a", var_a)],
            "precisions": [Statement("prec_w", prec_w), Statement("prec_a", prec_a)],
            "likelihood": [Statement("ell", network.likelihood()), Statement("dell", dell)],
            "readout": [Statement("prior_a", network.prior_readout()), Statement("slope_a", slope_a)],
            "hidden": [Statement("prior_w", network.prior_hidden()), Statement("slope_w", slope_w)],
            "alignment": [Statement("alignment", observables.alignment())],
            "neuron_prior": [Statement("prior_value", prior), Statement("prior_slope", 2 * sp.diff(prior, network.ww))],
            "neuron_scales": [Statement("var_w", var_w), Statement("limit", network.tilt_limit()),
                              Statement("mean_w2", network.D * var_w)],
            "relu_margin": [Statement("margin", network.relu_margin())],
            "ray_tail": [Statement("width", network.ray_tail_width())],
            "ray_radius": [Statement(n, e) for n, e in zip(("shape", "scale"), network.ray_radius_law())],
        },
    )


def modules():
    return {"densities": (
        "densities: the sampled laws (network posterior, single-neuron law) for every activation",
        "Log densities and gradients of the laws msat samples (docs/theory.md §1, §2b, §6, §7): the "
        "posterior of a finite network and the adapted single-neuron law, for each activation "
        "(argument act, codes in ACTIVATIONS); phi, phi', the observables of one network state.",
        "derive.network + derive.activations + derive.observables",
        None, 0, [densities_spec()])}
