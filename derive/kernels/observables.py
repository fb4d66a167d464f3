"""Kernel specifications of the shared observables (docs/theory.md §4): generated/observables.py."""
from __future__ import annotations

from .. import observables as obs
from ..emit import KernelSpec, Statement


def modules():
    specs = [
        KernelSpec(name="kernel_target_alignment", family="scalar", args=["yCy", "yy", "fro"],
                   doc="Kernel-target alignment y^T C y / (|y|^2 ||C||_F) from its parts (docs/theory.md §4).",
                   node=[Statement("alignment", obs.alignment())], returns="alignment"),
        KernelSpec(name="learned_direction", family="numpy_function", args=["X", "y", "m", "kappa"],
                   doc="X^T alpha, alpha = (y - m)/kappa: the direction the hidden weights learn "
                       "(docs/theory.md §2a, §4); m is the posterior mean of the train outputs.",
                   node=[Statement("u", obs.learned_direction())], returns="u"),
        KernelSpec(name="weight_cov_baseline", family="scalar", args=["D", "g_w"],
                   doc="The prior's hidden-weight second moment along a unit direction (g_w/D, docs/theory.md §1).",
                   node=[Statement("baseline", obs.weight_cov_baseline())], returns="baseline"),
        KernelSpec(name="weight_cov_excess", family="scalar", args=["quad", "D", "g_w"],
                   doc="u^T (1/N) E[W^T W] u - g_w/D from quad = u^T (1/N) E[W^T W] u (docs/theory.md §4).",
                   node=[Statement("excess", obs.weight_cov_excess())], returns="excess"),
    ]
    return {"observables": ("observables: kernel-target alignment, learned direction, weight-covariance excess",
                            "Observables shared by every method (docs/theory.md §4).",
                            "derive.observables", None, 0, specs)}
