"""The methods (docs/theory.md §1-§7), one module each with one signature:
``solver(data, params, *, progress=False, draws=None)`` returns a ladder solver
(runtime.ladder) for a validated Dataset and Params.

  nngp         infinite width (§1)
  exact        the exact 1-D integral over the rescaling field, linear networks (§2a)
  loop         its loop series to any generated order (§3)
  adaptive     kernel adaptation, linear networks, orders 0 and 1 (§2b); deep chains, any activation (§2d)
  kernelfield  the Wishart field's own loop, linear networks, order 2 (§2c)
  nonlinear    kernel adaptation for erf and relu (§2b, §6)
  sample       finite networks sampled by HMC (§7)
"""
from __future__ import annotations

from importlib import import_module

from ..ladder import Solver
from ..spectral import spectrum


class SpectralSolver(Solver):
    """A solver on the eigendecomposition of the NNGP kernel K^phi (docs/theory.md §2a)."""

    def __init__(self, data, params, spec=None):
        self.data, self.params = data, params
        self.spec = spectrum(data.X, data.y, data.X_test, params.g_ws, params.activation) if spec is None else spec


def module_name(params) -> str:
    """The method module that serves a request."""
    if params.method == "adaptive":
        if params.depth > 1:
            return "adaptive"  # the deep chains, every activation (docs/theory.md §2d)
        if params.activation != "linear":
            return "nonlinear"
        return "kernelfield" if params.order == 2 else "adaptive"
    return params.method


def solver(data, params, *, progress=False, draws=None, spec=None):
    """`spec`: the spectrum of data's inputs, where the caller has it (the loop series and the kernel field take it
    instead of factorising the inputs again)."""
    kw = {} if spec is None else {"spec": spec}
    return import_module(f"{__name__}.{module_name(params)}").solver(data, params, progress=progress,
                                                                     draws=draws, **kw)
