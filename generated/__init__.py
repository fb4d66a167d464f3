# msat.generated: numba kernels written by `msat derive` -- DO NOT EDIT.
"""Registry of generated kernel modules (loop orders 0..3, deep linear networks of depth
1..3, plus the exact integrand)."""
import importlib

MAX_ORDER = 3
MAX_DEPTH = 3
# the most `msat derive` emits (its --order and --depth limits)
DERIVABLE_ORDER = 8
DERIVABLE_DEPTH = 10


def _how(depth, order):
    """The derive command that emits a depth and order and keeps every one already generated (its --order and
    --depth are the highest it emits), or why there is none."""
    if order > DERIVABLE_ORDER or depth > DERIVABLE_DEPTH:
        return "msat derive emits orders up to %d and depths up to %d" % (DERIVABLE_ORDER, DERIVABLE_DEPTH)
    return "run `msat derive --order %d --depth %d`" % (max(order, MAX_ORDER), max(depth, MAX_DEPTH))


def rescaling(order):
    """The kernel-rescaling module of a loop order: msat.generated.rescaling_o<order>."""
    if not 0 <= order <= MAX_ORDER:
        raise ValueError("loop order %d is not generated (available: 0..%d); %s" % (order, MAX_ORDER, _how(1, order)))
    return importlib.import_module("msat.generated.rescaling_o%d" % order)


def deep(depth, order):
    """The loop modules of a deep linear network: (msat.generated.deep_layers_d<depth>_o<order>,
    msat.generated.deep_series_o<order>)."""
    if not (1 <= depth <= MAX_DEPTH and 0 <= order <= MAX_ORDER):
        raise ValueError(
            "depth %d at loop order %d is not generated (available: depths 1..%d, orders 0..%d); %s"
            % (depth, order, MAX_DEPTH, MAX_ORDER, _how(depth, order))
        )
    return (importlib.import_module("msat.generated.deep_layers_d%d_o%d" % (depth, order)),
            importlib.import_module("msat.generated.deep_series_o%d" % order))


def _module(name, doc):
    """An accessor that imports msat.generated.<name> when called."""
    def load():
        return importlib.import_module("msat.generated." + name)

    load.__doc__ = doc + ": msat.generated." + name
    return load


saddle = _module("rescaling_saddle", "The saddle equations of the kernel-rescaling action")
exact = _module("rescaling_exact", "The exact-integrand module")
linear_adaptation = _module("adaptive_linear", "Kernel adaptation of a linear network")
nonlinear_adaptation = _module("adaptive_nonlinear", "Kernel adaptation for any activation")
deep_linear_adaptation = _module("adaptive_deep_linear", "One layer of the kernel-adaptation chain, deep linear networks")
wishart_field = _module("kernel_field", "One loop of the Wishart field (kernel or weight space)")
nngp_kernels = _module("nngp", "Input and NNGP kernels, every activation")
readout_marginal = _module("marginal_posterior", "The hidden weights' posterior with the readout integrated out")
field_loop = _module("loop_nonlinear", "The kernel field's one loop for any activation")
blas_helpers = _module("lowered", "BLAS helpers of the lowered matrix nodes (row_quadratic, weighted_gram)")
