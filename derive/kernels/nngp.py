"""Kernel specification of the NNGP kernels (docs/theory.md §1): generated/nngp.py, one pairwise
and one diagonal kernel for every activation (argument act)."""
from __future__ import annotations

from .. import activations as acts
from ..emit import KernelSpec, Statement, cse_lines


def nngp_spec() -> KernelSpec:
    cases = []
    for code, name in enumerate(acts.ACTIVATIONS):
        expr = acts.nngp_kernel(name)
        diag = expr.subs({acts.Kab: acts.Kaa, acts.Kbb: acts.Kaa})
        cases.append({"name": name, "code": code,
                      "pair": cse_lines([Statement("k_phi", expr)], f"{name}_"),
                      "diagonal": cse_lines([Statement("k_phi", diag)], f"{name}_")})
    return KernelSpec(name="nngp", family="nngp", args=[], doc="", extra={"activations": cases})


def modules():
    return {"nngp": ("nngp: NNGP kernels of the hidden layer",
                     "NNGP kernels K^phi = E[phi(h) phi(h)^T], h ~ N(0, K), for every activation "
                     "(docs/theory.md §1; codes in ACTIVATIONS).",
                     "derive.activations.nngp_kernel", None, 0, [nngp_spec()])}
