"""What generated/ holds: kernel specifications (SymPy expressions + template family) per module.

  rescaling    the kernel-rescaling field, loop orders 0..L, saddle and exact integrand (§2a, §3)
  deep         the loop series of deep linear networks, per order and depth (§2d)
  adaptation   kernel adaptation of linear networks, orders 0 and 1 (§2b)
  deep_chain   one layer of the kernel-adaptation chain, deep linear networks (§2d)
  nonlinear    kernel adaptation for any activation: fit operator, single-neuron moments (§2b, §6)
  field        the Wishart field's one loop (§2c)
  nngp         NNGP kernels for every activation (§1)
  densities    the sampled laws: network posterior and single-neuron law (§1, §2b, §6, §7)
  observables  alignment, learned direction, weight-covariance excess (§4)
  marginal     the hidden weights' posterior with the readout integrated out (§7)
  generic_loop the kernel field's one loop for any activation (§2e)

(sections of docs/theory.md)
"""
from __future__ import annotations

from . import (adaptation, deep, deep_chain, densities, field, generic_loop, marginal, nngp, nonlinear,
               observables, rescaling)


def modules(max_order: int, max_depth: int = 3) -> dict:
    """{module name: (title, doc, derivation, order, nmax, [KernelSpec])} for every generated module."""
    return {**rescaling.modules(max_order), **deep.modules(max_order, max_depth), **adaptation.modules(), **deep_chain.modules(),
            **field.modules(), **nngp.modules(), **densities.modules(), **observables.modules(),
            **nonlinear.modules(), **marginal.modules(),
            **generic_loop.modules()}
