# msat.generated: numba kernels written by `msat derive` -- DO NOT EDIT.
"""Registry of generated kernel modules (loop orders 0..3, plus the exact integrand)."""
import importlib

MAX_ORDER = 3


def rescaling(order):
    """The kernel-rescaling module of a loop order: msat.generated.rescaling_o<order>."""
    if not 0 <= order <= MAX_ORDER:
        raise ValueError(
            "loop order %d is not generated (available: 0..%d); run `msat derive --order %d`"
            % (order, MAX_ORDER, order)
        )
    return importlib.import_module("msat.generated.rescaling_o%d" % order)


def saddle():
    """The saddle-equation module: msat.generated.rescaling_saddle."""
    return importlib.import_module("msat.generated.rescaling_saddle")


def linear_adaptation():
    """Kernel-adaptation saddle maps of a linear network: msat.generated.adaptive_linear."""
    return importlib.import_module("msat.generated.adaptive_linear")


def nonlinear_adaptation():
    """Kernel adaptation for any activation: msat.generated.adaptive_nonlinear."""
    return importlib.import_module("msat.generated.adaptive_nonlinear")


def wishart_field():
    """One loop of the Wishart field (kernel or weight space): msat.generated.kernel_field."""
    return importlib.import_module("msat.generated.kernel_field")


def nngp_kernels():
    """NNGP kernels (linear, erf, relu): msat.generated.nngp."""
    return importlib.import_module("msat.generated.nngp")


def exact():
    """The exact-integrand module: msat.generated.rescaling_exact."""
    return importlib.import_module("msat.generated.rescaling_exact")
