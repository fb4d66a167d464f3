"""One frozen parameter object, validated once (docs/theory.md §1): numbers, choices, what this
version offers for each activation, the scales the float64 evaluation needs, and the memory the
request will take. Everything below ``predict`` receives a :class:`Params`, never loose keywords.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from . import memory, spectral, values
from .errors import InputError, missing_generated
from .numerics.replicates import DEEP_MIN_SET, MIN_REPLICATES, MIN_SET, REPLICATES

METHODS, ACTIVATIONS = ("nngp", "exact", "loop", "adaptive", "sample"), ("linear", "erf", "relu")
#: methods built for each activation
AVAILABLE = {"linear": ("nngp", "exact", "loop", "adaptive", "sample"),
             "erf": ("nngp", "adaptive", "sample"), "relu": ("nngp", "adaptive", "sample")}
#: kernel-adaptation orders built per activation
ADAPTIVE_ORDERS = {"linear": (0, 1, 2), "erf": (0, 1, 2), "relu": (0, 1, 2)}
#: methods built for networks with more than one hidden layer (docs/theory.md §2d): all of them
DEEP_AVAILABLE = AVAILABLE
#: the sampler's readout: sampled with the hidden weights, or integrated out exactly (docs/theory.md §7)
READOUTS = ("sampled", "marginal")
#: non-linear adaptive estimators: cumulant expansion, single-neuron Monte Carlo, or chosen by chi/N
ESTIMATORS = ("auto", "cumulant", "mc")
#: the fit term chi |y|^2 / kappa and the kernel scale must stay below this (float64 headroom)
SCALE_MAX = 1e250
#: the largest kernel entry g_v (g_w/D)|x|^2 and kappa must lie in this range: the loop series
#: evaluates up to 8th powers of the kernel scale (order 3), which stay finite in float64 there
KERNEL_RANGE = (1e-35, 1e35)
#: kappa below this multiple of g_v tr(K^phi) is under the float64 resolution of the kernel: an eigendecomposition
#: leaves its null modes at ~10 eps ||K||, which weigh ~ that / kappa in every posterior mean: kept below ~1e-5
KAPPA_RESOLUTION = 1e6 * 2.0 ** -52

#: draws per chain below which the sampler's ESS and Monte Carlo errors are undefined (ArviZ); the fewest
#: Monte Carlo draws (--mc-samples) of erf/relu kernel adaptation with one hidden layer
MIN_SAMPLES, MIN_MC_SAMPLES = 4, MIN_REPLICATES * MIN_SET
#: the sampler's draws per chain and chains where none are given (None: not given, so named if ignored)
DEFAULT_SAMPLES, DEFAULT_CHAINS = 1000, 4
#: a non-linear layer this narrow can have modes over functions that chains do not cross: more chains, so that
#: R-hat sees them (docs/theory.md §7)
FEW_UNITS, FEW_UNIT_CHAINS = 4, 16


@dataclass(frozen=True)
class Params:
    """Every parameter of one request (docs/theory.md §1), validated. ``order`` is the order that
    runs (None for nngp, exact and sample)."""

    N: int  # the last hidden layer's width
    kappa: float
    g_v: float
    g_w: float  # the first hidden layer's prior scale
    activation: str
    method: str
    order: int | None
    dressed: bool
    P: int
    D: int
    P_test: int
    estimator: str = "auto"
    seed: int = 0
    mc_samples: int | None = None
    samples: int = 1000
    chains: int = 4
    readout: str = "sampled"
    widths: tuple = ()  # hidden-layer widths, first to last (depth = len)
    g_ws: tuple = ()  # hidden-layer prior scales, one per layer
    order_note: str | None = None  # why this order ran, when the user did not choose it
    ignored: tuple = ()  # options given that the method does not use (a warning in each result)

    @property
    def depth(self) -> int:
        return len(self.widths)

    def public(self) -> dict:
        """The "params" of a result object (the keys docs/cli.md lists for this method)."""
        out = {k: getattr(self, k) for k in ("N", "kappa", "g_v")}
        out.update(g_w=list(self.g_ws), activation=self.activation, dressed=self.dressed, P=self.P, D=self.D,
                   P_test=self.P_test, widths=list(self.widths), depth=self.depth)
        if self.method != "sample" and not (self.method == "adaptive" and self.activation != "linear"):
            out["basis"] = spectral.basis(self.P, self.D, self.activation)  # how K is factorised
        if self.method == "sample":
            out.update(samples=self.samples, chains=self.chains, seed=self.seed, readout=self.readout)
        elif self.method == "adaptive":
            out.update(estimator=self.estimator, seed=self.seed, mc_samples=self.mc_samples)
        return out

    def replace(self, **changes) -> "Params":
        return Params(**{**asdict(self), **changes})


def _listed(name, value):
    """A number, a sequence, or a comma-separated string -> list of raw items."""
    if isinstance(value, str):
        parts = [q.strip() for q in value.split(",")]
        if not all(values.is_number(q) for q in parts):
            raise InputError(f"{name} must be a number or a comma-separated list, got {value!r}")
        return [int(q) if q.lstrip("+-").isdigit() else float(q) for q in parts]
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return [value.item()]
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value, dtype=object)
        if arr.ndim != 1:  # [[20, 30]] flattened would hide a mistake
            raise InputError(f"{name} must be a number or a flat list of numbers, got shape {arr.shape}")
        out = list(arr)
        if not out:
            raise InputError(f"{name} is empty")
        return out
    return [value]


MAX_HIDDEN_LAYERS = 1000  # hidden layers; the exact deep integral takes 10 s at depth 1000, over a minute at 10,000


def architecture(N=None, widths=None, depth=None, g_w=1.0):
    """(widths, g_ws) of the hidden layers (docs/theory.md §2d) from the ways a user can say them:
    widths N1,...,NL; depth L with width N; or N alone (one hidden layer). g_w is one value or one
    per layer."""
    if widths is not None:
        widths = tuple(values.positive("widths", w, integer=True) for w in _listed("widths", widths))
        values.count("number of widths", len(widths), minimum=1, maximum=MAX_HIDDEN_LAYERS)
        if depth is not None and values.count("depth", depth, minimum=1) != len(widths):
            raise InputError(f"--depth {depth} conflicts with --widths of {len(widths)} layers")
        if N is not None and values.positive("N", N, integer=True) != widths[-1]:
            raise InputError(f"--N {N} conflicts with --widths (last width {widths[-1]}); give one of them")
    else:
        if N is None:
            raise InputError("N (the hidden width) is required unless widths are given")
        depth = 1 if depth is None else values.count("depth", depth, minimum=1, maximum=MAX_HIDDEN_LAYERS)
        widths = (values.positive("N", N, integer=True),) * depth
    g_ws = [values.positive("g_w", g) for g in _listed("g_w", g_w)]
    if len(g_ws) == 1:
        g_ws = g_ws * len(widths)
    if len(g_ws) != len(widths):
        raise InputError(f"g_w takes one value or one per hidden layer ({len(widths)}), got {len(g_ws)}")
    return widths, tuple(g_ws)


#: the order-2 field's size (P(P+1)/2 + P P_test + P_test, the loop's `field_dimension`) up to which erf/relu
#: adaptation runs order 2 by default: its dense loop costs O(M d^2) per chi (chi = 1, teacher task, D = 1.5 P,
#: N = 4P: order 2 8 s against order 1's 3 s at d = 630, 26 s against 12 s at 1640, 77 s against 8 s at 3050)
DEFAULT_ORDER2_MAX_FIELD = 2000


def default_order(method, activation, depth, P, P_test):
    """(order, note): the order that runs when none is given. Order 1, except erf/relu kernel adaptation
    with one hidden layer, where order 2 (the kernel field's loop, docs/theory.md §2e) is the most
    accurate theory at every chi measured, as long as its field is small enough to be cheap."""
    if method != "adaptive" or activation == "linear" or depth > 1:
        return 1, None
    d = P * (P + 1) // 2 + P * P_test + P_test  # the mean field's coordinates and the test variances
    if d <= DEFAULT_ORDER2_MAX_FIELD:
        return 2, ("order 2 by default: the kernel field's loop removes most of order 1's O(P/N) error "
                   "(docs/theory.md §2e); --order 1 is faster")
    return 1, (f"order 1 by default: order 2's kernel field has {d} coordinates (more than "
               f"{DEFAULT_ORDER2_MAX_FIELD}), its dense loop would cost a minute or more per chi; "
               "--order 2 asks for it (errors O((P/N)^2) instead of O(P/N), docs/theory.md §2e)")


def build(P, D, P_test, *, N=None, kappa, g_v=1.0, g_w=1.0, widths=None, depth=None, activation="linear",
          method=None, order=None, dressed=False, estimator="auto", seed=0, mc_samples=None, samples=None,
          chains=None, readout="sampled", n_chi: int = 1) -> Params:
    """Validate every parameter of a request on data of shape (P, D), P_test test points, and its memory at n_chi."""
    P, D, P_test = values.count("P", P, 1), values.count("D", D, 1), values.count("P_test", P_test, 0)
    widths, g_ws = architecture(N, widths, depth, g_w)
    N, g_w = widths[-1], g_ws[0]
    kappa = values.positive("kappa", kappa, bounds=KERNEL_RANGE)
    g_v = values.positive("g_v", g_v)
    dressed = values.flag("dressed", dressed)
    activation = values.choice("activation", activation, ACTIVATIONS)
    if method is None:
        method = "loop" if activation == "linear" else "adaptive"
    method = values.choice("method", method, METHODS)
    if method not in AVAILABLE[activation]:
        raise InputError(f"method {method!r} is not available for activation {activation!r} in this "
                         f"version (available: {', '.join(AVAILABLE[activation])})")
    if len(widths) > 1 and method not in DEEP_AVAILABLE[activation]:
        raise InputError(f"method {method!r} is not available for {activation} networks with "
                         f"{len(widths)} hidden layers in this version (available at depth > 1: "
                         f"{', '.join(DEEP_AVAILABLE[activation])})")
    order_given = order is not None and method not in ("loop", "adaptive")
    order, order_note = default_order(method, activation, len(widths), P, P_test) if order is None else (order, None)
    order = values.order(order)
    readout = values.choice("readout", readout, READOUTS)
    if readout == "marginal" and (method != "sample" or len(widths) > 1):
        raise InputError("--readout marginal applies to --method sample with one hidden layer (the readout "
                         "integrated out given the hidden weights)")
    if method == "adaptive" and order not in ADAPTIVE_ORDERS[activation]:
        raise InputError(f"--method adaptive supports --order "
                         f"{', '.join(map(str, ADAPTIVE_ORDERS[activation]))} for activation "
                         f"{activation!r}, got {order}")
    if method == "adaptive" and len(widths) > 1 and activation != "linear" and estimator not in (None, "auto"):
        raise InputError(f"--estimator {estimator} does not apply with {len(widths)} hidden layers: the deep "
                         "chain uses importance sums over fixed draws (set their number with --mc-samples)")
    if method == "adaptive" and order == 2 and len(widths) > 1:
        raise InputError(f"--method adaptive --order 2 is not available with {len(widths)} hidden layers in "
                         f"this version (at depth > 1: orders 0 and 1)")
    if method == "loop":
        from msat import generated

        try:  # the registry says which derive command emits a missing order or depth
            generated.rescaling(order) if len(widths) == 1 else generated.deep(len(widths), order)
        except (ValueError, ImportError) as err:
            raise InputError(missing_generated(err) or str(err).splitlines()[0]) from None
    estimator = values.choice("estimator", estimator, ESTIMATORS)
    seed = values.seed(seed)
    if mc_samples is not None:
        # sets of 500 draws (one layer, 4 at least) or 100 (deep, 8) for honest errors; fewer were raised silently
        least = (MIN_MC_SAMPLES if len(widths) == 1 else REPLICATES * DEEP_MIN_SET) if method == "adaptive" and \
            activation != "linear" else 1
        mc_samples = values.count("mc_samples", mc_samples, minimum=least)
    sampling_given = [k for k, v in (("samples", samples), ("chains", chains)) if v is not None]
    if method != "sample":  # named as ignored below, not judged (as --mc-samples is where nothing samples)
        samples = chains = None
    samples = values.count("samples", DEFAULT_SAMPLES if samples is None else samples, minimum=MIN_SAMPLES)
    few = FEW_UNIT_CHAINS if activation != "linear" and min(widths) <= FEW_UNITS else DEFAULT_CHAINS
    chains = values.count("chains", few if chains is None else chains, minimum=1)
    if method == "adaptive" and order == 2 and activation == "linear":
        n, what = (P, "P") if P < D else (D, "D")
        if N <= n + 1:
            raise InputError(f"--order 2 needs N > {what} + 1 = {n + 1} (docs/theory.md §2c: the "
                             f"{'kernel' if P < D else 'weight'} field is {n} x {n}); got N = {N}")
    ignored = []
    if order_given:
        ignored.append(f"--order applies to --method loop and adaptive only: ignored by {method}")
    if dressed and method != "loop":
        ignored.append(f"--dressed applies to --method loop only: ignored by {method}")
    if estimator not in (None, "auto") and not (method == "adaptive" and activation != "linear"):
        ignored.append(f"--estimator applies to erf/relu --method adaptive only: ignored by {activation} {method}")
    if mc_samples is not None and not (method == "adaptive" and activation != "linear"):
        ignored.append(f"--mc-samples applies to erf/relu --method adaptive only: ignored by {activation} {method}")
    if sampling_given and method != "sample":
        ignored += [f"--{k} applies to --method sample only: ignored by {method}" for k in sampling_given]
    p = Params(N=N, kappa=kappa, g_v=g_v, g_w=g_w, activation=activation, method=method,
               order=order if method in ("loop", "adaptive") else None, dressed=bool(dressed) and method == "loop",
               P=P, D=D, P_test=P_test, estimator=estimator, seed=seed,
               mc_samples=mc_samples, samples=samples, chains=chains, widths=widths, g_ws=g_ws,
               readout=readout, order_note=order_note, ignored=tuple(ignored))
    memory.require(memory.needed(p, n_chi), f"{method} on P = {p.P}, D = {p.D}, P_test = {p.P_test}, N = {N}"
                   + (f", {n_chi} chi points" if n_chi > 1 else ""), memory.what_fits(p, n_chi))
    return p


def _largest(A) -> float:
    return max(float(np.max(A, initial=0.0)), -float(np.min(A, initial=0.0))) if A.size else 0.0


def _scaled_norms(A, scale, rows=4096):
    """|a/scale|^2 per row, in blocks of rows (no copy of a large A)."""
    out = np.empty(A.shape[0])
    for i in range(0, A.shape[0], rows):
        B = A[i:i + rows] / scale
        out[i:i + rows] = np.einsum("ij,ij->i", B, B)
    return out


def check_scales(X, y, X_test, p: Params) -> None:
    """Refuse data and parameters whose products overflow or underflow float64 in the theory:
    the kernel (g_w/D) |x|^2 of the largest input, the fit term chi |y|^2 / kappa at chi = 1, and a
    kappa below the float64 resolution of g_v K^phi (the posterior is then numerically singular)."""
    # the last layer's kernel: prod g_l (g_w,1/D) |x|^2 for linear (relu halves it per layer); erf caps it
    c = (math.prod(p.g_ws) if p.activation != "erf" else p.g_w) / p.D
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        big = max(_largest(X), _largest(X_test))
        scale = big if big > 0 else 1.0
        # squared norms of the inputs scaled by their largest entry, so that neither overflow nor
        # underflow hides the size of the kernel: log10 kmax = log10(c scale^2 max |x/scale|^2)
        norms, norms_test = _scaled_norms(X, scale), _scaled_norms(X_test, scale)
        top = float(np.max(np.concatenate([norms, norms_test]), initial=0.0))
        log_kmax = math.log10(c) + 2 * math.log10(scale) + math.log10(top) if top > 0 else -math.inf
        norms = c * norms * scale * scale
        top_y = _largest(y)  # |y|^2 / kappa in logs, scaled by the largest target: 1e-200 targets square to 0
        log_fit = (2 * math.log10(top_y) + math.log10(float(np.sum((y / top_y) ** 2))) - math.log10(p.kappa)
                   if top_y > 0 else None)
    lo, hi = KERNEL_RANGE
    if top > 0:
        # the kernel enters alone (k*^T U, k**) and times g_v: both must stay in range
        log_gk = math.log10(p.g_v) + log_kmax
        logs = [log_gk, log_kmax]
        if p.activation == "erf":  # |erf| <= 1 caps K^phi from above
            logs = [min(log_gk, math.log10(p.g_v)), min(log_kmax, 0.0)]
        if min(logs) < math.log10(lo) or max(logs) > math.log10(hi):
            raise InputError(f"inputs out of scale: the largest kernel entry (g_w/D)|x|^2 is 10^{log_kmax:.1f} "
                             f"and g_v times it 10^{log_gk:.1f} (largest input entry {big:.3g}); both must lie "
                             f"between {lo:g} and {hi:g}: rescale X, g_w or g_v")
    # tiny targets: the saddle's residual norms underflow to 0 and Newton stops at its start (y ~ 1e-162)
    if log_fit is not None and not abs(log_fit) <= math.log10(SCALE_MAX):
        raise InputError(f"targets out of scale for kappa = {p.kappa:g}: |y|^2 / kappa = 10^{log_fit:.1f} "
                         f"{'overflows' if log_fit > 0 else 'underflows'} float64 in the fit term; rescale y")
    trace = p.g_v * float(np.sum(norms))
    if p.activation == "erf":
        trace = min(trace, p.g_v * p.P)  # |erf| <= 1 bounds the diagonal of K^phi
    floor = KAPPA_RESOLUTION * trace
    if p.kappa < floor:
        raise InputError(f"kappa = {p.kappa:g} is below the float64 resolution of the kernel "
                         f"(1e6 2^-52 g_v tr K = {floor:.3g}): the posterior is numerically singular; "
                         f"use kappa >= {floor:.3g}")
