"""Kernel specifications for kernel adaptation (THEORY §1, §2b, §6): what generated/ holds.

  adaptive_linear   per-eigenvalue maps of the linear-phi saddle (orders 0 and 1): b = h^-1(rho),
                    f = A-eigenvalue, df/drho; the rank-one coefficient sigma; the field step
                    Ct(A, alpha) and the predictions at the saddle (NumPy matrix functions);
  nngp              K^phi (train-train / test-train pairs, test diagonal) for linear, erf, relu;
  neuron_<phi>      the single-neuron MALA sampler under q(w) with phi and phi' inlined.
"""
from __future__ import annotations

import sympy as sp

from . import activations, adaptive
from .emit import KernelSpec, Statement, code


def adapted_spectrum_spec(order: int) -> KernelSpec:
    red = adaptive.reduction(order)
    b = adaptive.b
    node = [
        Statement("b_out[j]", b),
        Statement("f_out[j]", red.f),
        Statement("df_out[j]", sp.diff(red.f, b) / sp.diff(red.h, b)),
    ]
    return KernelSpec(
        name=f"adapted_spectrum_o{order}",
        family="row_map",
        args=["rho_modes", "N", "kappa", "g_v", "b_out", "f_out", "df_out"],
        doc=(
            "Kernel-adaptation saddle, order %d (THEORY §2b), on the eigenvalues rho of "
            "R = Lambda^-1 - sigma a a^T: C-eigenvalue b = h^-1(rho) with h(b) = %s, "
            "A-eigenvalue f = 1/(g_v b + kappa), and df/drho = f'(b)/h'(b) (derive.adaptive)."
            % (order, sp.sstr(red.h))
        ),
        node=node,
        prelude=[("rho", "rho_modes[j]"), ("b", red.b_of_rho)],
        rows="rho_modes.shape[0]",
    )


def rank_one_spec(order: int) -> KernelSpec:
    red = adaptive.reduction(order)
    return KernelSpec(
        name=f"rank_one_coefficient_o{order}",
        family="scalar",
        args=["N", "chi", "g_v"],
        doc="sigma in R = Lambda^-1 - sigma a a^T: the directional (alpha alpha^T) weight of -2 Ct.",
        node=[Statement("sigma", red.sigma)],
        returns="sigma",
    )


def conjugate_field_spec(order: int) -> KernelSpec:
    return KernelSpec(
        name=f"conjugate_field_o{order}",
        family="numpy_function",
        args=["A", "alpha", "N", "chi", "g_v"],
        doc="Ct at the saddle, order %d (THEORY §2b): derived dS/dC = 0 solved for Ct." % order,
        node=[Statement("Ct", adaptive.conjugate_field(order))],
        returns="Ct",
    )


def predictions_spec() -> KernelSpec:
    preds = adaptive.predictions()
    node = [Statement(k, v) for k, v in preds.items()]
    return KernelSpec(
        name="predictions",
        family="numpy_function",
        args=["C", "Cs", "css", "A", "alpha", "g_v", "chi"],
        doc=(
            "Predictions at the kernel-adaptation saddle (THEORY §2b): train mean, test mean, test "
            "variance; column vectors; valid in any orthonormal basis of a subspace holding the "
            "ranges of C and C*."
        ),
        node=[Statement("P", sp.Symbol("C.shape[0]"))] + node,
        returns=", ".join(preds),
    )


def nngp_specs(name: str):
    expr = activations.nngp_kernel(name)
    pair = KernelSpec(
        name=f"nngp_{name}",
        family="pairwise",
        args=["K_ab_pairs", "diag_a", "diag_b", "out"],
        doc=f"K^phi_ab for phi = {name} from K_aa, K_bb, K_ab (THEORY §1).",
        node=[Statement("out[a, c]", expr)],
    )
    diag = KernelSpec(
        name=f"nngp_{name}_diagonal",
        family="row_map",
        args=["k_diag", "out"],
        doc=f"K^phi_aa for phi = {name} (test diagonal, THEORY §1).",
        node=[Statement("out[j]", expr.subs({activations.Kab: activations.Kaa, activations.Kbb: activations.Kaa}))],
        prelude=[("K_aa", "k_diag[j]")],
        rows="k_diag.shape[0]",
    )
    return [pair, diag]


def neuron_spec(name: str) -> KernelSpec:
    x = sp.Symbol("x", real=True)
    ph = activations.phi(name).subs(activations.h, x)
    dph = activations.dphi(name).subs(activations.h, x)
    ww, D, g_w = sp.symbols("ww D g_w", positive=True)
    prior = -D / (2 * g_w) * ww  # log N(w; 0, (g_w/D) I) up to a constant, ww = |w|^2
    return KernelSpec(
        name=f"mala_{name}",
        family="neuron",
        args=["W", "X", "Ct", "D", "g_w", "step", "n_steps", "n_burn", "thin", "seed",
              "accepted", "log_q", "samples"],
        doc=(
            f"MALA chains under the adapted single-neuron law q(w) ∝ N(w; 0, g_w/D) "
            f"exp(phi(Xw)^T Ct phi(Xw)), phi = {name} (THEORY §2b, §6). Updates W (chains x D) in "
            "place, counts accepted moves, and records every thin-th state after n_burn steps into "
            "samples (rows); returns the number of rows written."
        ),
        extra={
            "activation": name,
            "features_name": f"features_{name}",
            "pointwise": [Statement("u[a]", ph), Statement("du[a]", dph)],
            "prior": [Statement("prior_value", prior), Statement("prior_slope", 2 * sp.diff(prior, ww))],
            "record": [Statement("phi_x", ph)],
        },
    )


def modules():
    out = network_modules()
    specs = []
    for order in adaptive.ORDERS:
        specs += [adapted_spectrum_spec(order), rank_one_spec(order), conjugate_field_spec(order)]
    specs.append(predictions_spec())
    out["adaptive_linear"] = (
        "adaptive_linear: kernel-adaptation saddle of a linear network",
        "Kernel adaptation for linear networks (THEORY §2b), orders 0 and 1: per-eigenvalue saddle "
        "maps, the conjugate field and the predictions at the saddle.",
        "derive.adaptive.saddle + derive.adaptive.reduction + derive.adaptive.predictions",
        1,
        0,
        specs,
    )
    specs = []
    for name in activations.ACTIVATIONS:
        specs += nngp_specs(name)
    out["nngp"] = (
        "nngp: NNGP kernels of the hidden layer",
        "NNGP kernels K^phi = E[phi(h) phi(h)^T], h ~ N(0, K), for linear, erf, relu (THEORY §1).",
        "derive.activations.nngp_kernel",
        None,
        0,
        specs,
    )
    for name in activations.ACTIVATIONS:
        out[f"neuron_{name}"] = (
            f"neuron_{name}: single-neuron sampler, phi = {name}",
            f"Single-neuron MALA sampler under the adapted law q(w) for phi = {name} (THEORY §6).",
            "derive.activations.phi + derive.activations.dphi",
            None,
            0,
            [neuron_spec(name)],
        )
    return out


__all__ = ["modules", "code"]


def network_spec(name: str) -> KernelSpec:
    """HMC over all weights of a finite network (THEORY §7) with the model's derived slopes."""
    from . import network

    x = sp.Symbol("x", real=True)
    ph = activations.phi(name).subs(activations.h, x)
    dph = activations.dphi(name).subs(activations.h, x)
    dell, slope_a, slope_w = network.slopes()
    return KernelSpec(
        name=f"hmc_{name}",
        family="network",
        args=["W", "a", "X", "y", "X_test", "dirs", "chi", "kappa", "g_v", "g_w", "m_W", "m_a",
              "eps", "n_leap", "n_iter", "jitter", "rng", "record", "accumulate_w", "out_train",
              "out_test", "out_dirs", "out_align", "accept", "wsum", "ksum", "warm_W"],
        doc=(
            f"HMC over (W, a) of a two-layer network, phi = {name} (THEORY §1, §7): per-group masses "
            "m_W, m_a (preconditioning), step eps jittered by +-jitter, n_leap leapfrog steps, n_iter "
            "iterations from the state (W, a), updated in place, with momenta, jitter and accept draws "
            "from the NumPy Generator rng (PCG64; its stream continues across calls). With record: outputs on X and X_test, "
            "(1/N) sum_i (w_i . u)^2 for the rows u of dirs, the kernel-target alignment of the "
            "empirical feature kernel and its running sum (ksum), and optionally the running sum of "
            "(1/N) W^T W; without: "
            "per-iteration sums of squares of W and a (for warm-up mass adaptation)."
        ),
        extra={
            "activation": name,
            "phi": [Statement("phi_x", ph)],
            "dphi": [Statement("dphi_x", dph)],
            "likelihood": [Statement("ell", network.likelihood()), Statement("dell", dell)],
            "readout": [Statement("prior_a", network.prior_readout()), Statement("slope_a", slope_a)],
            "hidden": [Statement("prior_w", network.prior_hidden()), Statement("slope_w", slope_w)],
        },
    )


def network_modules():
    return {
        f"network_{name}": (
            f"network_{name}: posterior sampler of a finite network, phi = {name}",
            f"HMC over all weights of a finite two-layer network, phi = {name} (THEORY §7).",
            "derive.network + derive.activations",
            None,
            0,
            [network_spec(name)],
        )
        for name in activations.ACTIVATIONS
    }
