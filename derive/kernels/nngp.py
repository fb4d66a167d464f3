"""Kernel specification of the NNGP kernels (docs/theory.md §1): generated/nngp.py, one pairwise
and one diagonal kernel for every activation (argument act)."""
from __future__ import annotations

from .. import activations as acts
from .. import indices
from ..emit import KernelSpec, Statement, code, cse_lines


def nngp_spec() -> KernelSpec:
    cases = []
    for act, name in enumerate(acts.ACTIVATIONS):
        expr = acts.nngp_kernel(name)
        diag = expr.subs({acts.Kab: acts.Kaa, acts.Kbb: acts.Kaa})
        cases.append({"name": name, "code": act,
                      "pair": cse_lines([Statement("k_phi", expr)], f"{name}_"),
                      "diagonal": cse_lines([Statement("k_phi", diag)], f"{name}_")})
    return KernelSpec(name="nngp", family="nngp", args=[], doc="", extra={"activations": cases})


def input_kernels_spec() -> KernelSpec:
    K, ks, kss = acts.input_kernels()
    lines = indices.numpy_lines({"K": (K, ("a", "b")), "kstar": (ks, ("a", "t")), "kss": (kss, ("t",))},
                                {"X": "X", "X_test": "X_test"}, code)
    return KernelSpec(name="input_kernels", family="numpy_lines", args=["X", "X_test", "g_w"],
                      doc="(K, k*, k**) = (g_w/D) x . x' between train and test inputs (docs/theory.md §1).",
                      extra={"lines": ["D = X.shape[1]", *lines]}, returns="K, kstar, kss")


def layer_spec() -> KernelSpec:
    return KernelSpec(name="layer_preactivations", family="numpy_function", args=["K", "g"],
                      doc="g K: the covariance of a layer's preactivations from the previous layer's kernel "
                          "(docs/theory.md §2d).",
                      node=[Statement("C", acts.layer_preactivations())], returns="C")


def modules():
    return {"nngp": ("nngp: NNGP kernels of the hidden layer",
                     "The input kernels and the NNGP kernels K^phi = E[phi(h) phi(h)^T], h ~ N(0, K), for "
                     "every activation (docs/theory.md §1; codes in ACTIVATIONS).",
                     "derive.activations.nngp_kernel + derive.activations.input_kernels", None, 0,
                     [input_kernels_spec(), layer_spec(), nngp_spec()])}
