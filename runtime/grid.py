"""A sweep's grid (docs/cli.md, `msat sweep`): every option a comma-separated list, parsed and checked
before any work starts, and the tasks it splits into (one per point of every dimension but chi: the
chi ladder of a task runs in order, with warm starts).

List syntax: `1,2,5`; a range of integers `0..9`; relative chi values `sqrtN` and `N` (per width);
`method:order` (`loop:2`); per-layer values with 'x' (`--widths 50x200`, `--g-w 1x2`); booleans
`true,false` for `--dressed`. `--depth` is a dimension of its own (layers of width N each; 0 with `--widths`,
whose items set the depth), and so is the data set: the built-in sets named by `--dataset ising,teacher`, or
the one `--data` file's name.
"""
from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass

from . import values
from .errors import InputError
from .params import ACTIVATIONS, ESTIMATORS, METHODS, READOUTS

#: the swept dimensions in their order in the store (chi last: a task's ladder runs along it)
DIMS = ("method", "N", "depth", "kappa", "seed", "g_v", "g_w", "activation", "dressed", "estimator", "mc_samples",
        "samples", "chains", "readout", "dataset", "P", "D", "P_test", "chi")
#: the Monte Carlo counts where 0 stands for the method's own default (not given)
DEFAULT_COUNTS = ("mc_samples", "samples", "chains")
#: chi tokens relative to the (last) width
RELATIVE = {"N": lambda N: float(N), "sqrtN": lambda N: math.sqrt(N)}
#: the most items one list may hold, and the most points (tasks times chi values) a sweep may have: a larger
#: grid is a typo (`--seed 0..100000000`), whose expansion alone would run for minutes
MAX_ITEMS, MAX_POINTS = 100_000, 1_000_000


def _items(name, text):
    text = str(text).strip()
    if not text:
        raise InputError(f"--{name} is empty")
    out = []
    for part in text.split(","):
        part = part.strip()
        if ".." in part:
            lo, _, hi = part.partition("..")
            a, b = _integer(lo), _integer(hi)
            if a is None or b is None:
                raise InputError(f"--{name}: a range is two integers a..b, got {part!r}")
            if b < a:
                raise InputError(f"--{name}: empty range {part!r}")
            if b - a + 1 + len(out) > MAX_ITEMS:
                raise InputError(f"--{name}: the range {part!r} has {b - a + 1} items, over {MAX_ITEMS:,} in one list")
            out += [str(k) for k in range(a, b + 1)]
        elif part:
            out.append(part)
        else:
            raise InputError(f"--{name}: empty item in {text!r}")
    if len(set(out)) != len(out):
        raise InputError(f"--{name}: repeated values in {text!r}")
    return out


def _integer(text):
    """An integer as typed in ASCII digits (an optional sign), or None: int() also reads `1_0`, `١` and `𝟙`, which
    docs/cli.md refuses (exit 2) as every other number of a list."""
    text = text.strip()
    return int(text) if values.is_number(text) and text.lstrip("+-").isdigit() else None


def _number(name, token, kind):
    v = values.from_text(f"--{name}", token)  # 1e-400 named as below float64's range, not reported as 0.0
    if kind in ("count", "size"):  # a size may be 0 (data without test points); count reads 2.0 as 2
        return values.count(name, v, 1 if kind == "count" else 0)
    if kind == "seed":
        return values.seed(v)
    if kind == "chi":
        return values.chi_value(v)
    return values.positive(name, v)


def _layers(name, token, kind):
    """A per-layer value 'axb' (or one value) as a string coordinate and a tuple of numbers."""
    return tuple(_number(name, t, kind) for t in token.split("x"))


def token(v: float) -> str:
    """The one spelling of a number in a string coordinate: 1.0 and 1 are both '1', 1e100 is '1e+100' (so that
    --resume and the repeat check compare values, not how they were typed)."""
    s = repr(float(v))
    return s[:-2] if s.endswith(".0") else s


def _method(token):
    name, sep, order = token.partition(":")
    name = name.strip().lower()  # as values.choice: NNGP is nngp
    if name not in METHODS:
        raise InputError(f"--method: unknown method {name!r} in {token!r}")
    if sep and not (values.is_number(order) and order.isdigit()):  # isdigit alone takes '²' and '١'
        raise InputError(f"--method: the order after ':' is an integer, got {token!r}")
    if order and name not in ("loop", "adaptive"):  # a label with an order that nothing uses would mislead
        raise InputError(f"--method: {name} takes no order (only loop and adaptive do), got {token!r}")
    return name, (int(order) if order else None)


def _method_token(token):
    """The one spelling of a method item: loop is loop:1 (its default order), loop:01 is loop:1; adaptive keeps no
    order where none is given (its default depends on the data)."""
    name, order = _method(token)
    if order is None and name == "loop":
        order = 1
    return name if order is None else f"{name}:{order}"


def _with_orders(methods, order):
    """--order's list given to the methods that take one and were given none (loop, adaptive): `--method
    loop,exact --order 1,2` is loop:1, loop:2, exact (where no item takes them, the sweep says so, as predict does)."""
    if order is None:
        return methods
    orders = [_number("order", t, "size") for t in _items("order", order)]
    out = []
    for t in methods:
        name, given = _method(t)
        out += [f"{name}:{o}" for o in orders] if given is None and name in ("loop", "adaptive") else [t]
    return out


def _boolean(token):
    t = token.lower()
    if t not in ("true", "false", "1", "0", "yes", "no"):
        raise InputError(f"--dressed takes true or false, got {token!r}")
    return t in ("true", "1", "yes")


@dataclass
class Grid:
    """Coordinates of every dimension (strings, numbers or per-layer strings) and how to read them."""

    coords: dict
    spec: dict  # everything that defines the sweep (for --resume)
    widths_from: str = "N"  # "N" (with the task's depth) or "widths"
    order_unused: bool = False  # --order given, and every --method item has its own order or takes none

    @property
    def names(self) -> tuple:
        """The store's dimension names, in DIMS' order: `widths` where --widths gave the layers (its items, "axb"),
        `N` otherwise (dimensions are named after the swept options)."""
        return tuple("widths" if d == "N" and self.widths_from == "widths" else d for d in DIMS)

    @property
    def task_dims(self):
        return [d for d in DIMS if d != "chi"]

    def shape(self):
        return tuple(len(self.coords[d]) for d in DIMS)

    @property
    def n_tasks(self) -> int:
        return math.prod(len(self.coords[d]) for d in self.task_dims)

    def tasks(self):
        """(index tuple over task_dims, {dim: coordinate}) for every task, in order."""
        dims = self.task_dims
        for idx in itertools.product(*(range(len(self.coords[d])) for d in dims)):
            yield idx, {d: self.coords[d][i] for d, i in zip(dims, idx)}

    def chi_values(self, last_width):
        return [RELATIVE[c](last_width) if c in RELATIVE else float(c) for c in self.coords["chi"]]

    def spec_json(self):
        return json.dumps(self.spec, sort_keys=True)


def build(*, N=None, widths=None, depth=None, chi, kappa, g_v="1", g_w="1", activation="linear", method=None,
          order=None, dressed="false", seed="0", P=None, D=None, P_test=None, source=None, estimator="auto",
          mc_samples=None, samples=None, chains=None, readout="sampled", data=None, dataset=None) -> Grid:
    """Parse every list of a sweep; InputError (exit 2) on anything malformed, before any work. `data`: what
    identifies a --data file's contents (its target column and SHA-256), kept in the spec for --resume.
    `dataset`: the built-in sets (a list); without it the one data set is `source` (a built-in set's name, or a
    file's path, labelled by its name)."""
    if N is None and widths is None:
        raise InputError("give --N (with --depth for equal layers) or --widths")
    if widths is not None:
        if depth is not None:
            raise InputError("--depth goes with --N, not with --widths")
        Ns = [_layers("widths", t, "count") for t in _items("widths", widths)]
        n_key = "widths"
        if N is not None:  # as predict: --N may name the last width (the readout's), which then says nothing new
            n = [_number("N", t, "count") for t in _items("N", N)]
            if n != [n[0]] or any(w[-1] != n[0] for w in Ns):
                raise InputError(f"--N {N} conflicts with --widths {widths}: --N is the last width; give one of them")
    else:
        depths = [_number("depth", t, "count") for t in _items("depth", depth)] if depth is not None else [1]
        Ns = [(_number("N", t, "count"),) for t in _items("N", N)]
        n_key = "N"
    chis = [c if c in RELATIVE else token(_number("chi", c, "chi")) for c in _items("chi", chi)]
    activations = [values.choice("activation", t, ACTIVATIONS) for t in _items("activation", activation)]
    if method is None:  # predict's default: loop for linear networks, adaptive otherwise
        if len({a == "linear" for a in activations}) > 1:
            raise InputError("--method is needed when --activation mixes linear with erf or relu (predict's default "
                             "differs: loop for linear, adaptive otherwise)")
        method = "loop" if activations[0] == "linear" else "adaptive"
    given = _items("method", method)
    ordered = _with_orders(given, order)  # --order given to the items that take it
    coords = {
        "method": [_method_token(t) for t in ordered],
        "N": [w[-1] for w in Ns] if n_key == "N" else ["x".join(str(n) for n in w) for w in Ns],
        "depth": depths if n_key == "N" else [0],  # 0: the --widths items set it
        "kappa": [_number("kappa", t, "positive") for t in _items("kappa", kappa)],
        "seed": [_number("seed", t, "seed") for t in _items("seed", seed)],
        "g_v": [_number("g-v", t, "positive") for t in _items("g-v", g_v)],
        "g_w": ["x".join(token(v) for v in _layers("g-w", t, "positive")) for t in _items("g-w", g_w)],  # a string
        "activation": activations,
        "dressed": [_boolean(t) for t in _items("dressed", dressed)],
        "estimator": [values.choice("estimator", t, ESTIMATORS) for t in _items("estimator", estimator)],
        **{k: [_number(k.replace("_", "-"), t, "count") for t in _items(k.replace("_", "-"), v)] if v is not None
              else [0]
           for k, v in (("mc_samples", mc_samples), ("samples", samples), ("chains", chains))},
        "readout": [values.choice("readout", t, READOUTS) for t in _items("readout", readout)],
        "dataset": _datasets(dataset, source),
        "P": [_number("P", t, "count") for t in _items("P", P)] if P is not None else [0],
        "D": [_number("D", t, "count") for t in _items("D", D)] if D is not None else [0],
        "P_test": [_number("P-test", t, "size") for t in _items("P-test", P_test)] if P_test is not None else [0],
        "chi": chis,
    }
    for name, v in coords.items():
        if len(set(v)) != len(v):  # items typed differently may still be one value (0.1 and 0.10)
            raise InputError(f"--{name.replace('_', '-')}: repeated values {v}")
    points = math.prod(len(v) for v in coords.values())
    if points > MAX_POINTS:
        raise InputError(f"the sweep has {points:,} points (tasks x chi values), over {MAX_POINTS:,}: split it")
    spec = {k: list(v) for k, v in coords.items()}
    spec.update(source=source, widths_given=n_key)
    if data is not None:  # absent for built-in sets: their stores' spec is as before
        spec["data"] = data
    return Grid(coords, spec, n_key, order is not None and ordered == given)


def _datasets(dataset, source) -> list:
    """The data-set coordinate: built-in names (`--dataset ising,teacher`), else the one source's label."""
    from .data.builtin import BUILTINS

    if dataset is not None:
        return [values.choice("built-in dataset", t, BUILTINS) for t in _items("dataset", dataset)]
    if source in BUILTINS:
        return [source]
    # a file name's bytes that are not UTF-8 (surrogate escapes) as \\xff: stores and netCDF files hold UTF-8
    return [os.fsencode(os.path.basename(str(source))).decode("utf-8", "backslashreplace") if source else "data"]


def widths_of(grid: Grid, task) -> tuple:
    """The hidden widths of a task: its N coordinate (a width) repeated over its depth, or the 'axb' item of
    --widths."""
    if grid.widths_from == "N":
        return (int(task["N"]),) * int(task["depth"])
    return tuple(int(n) for n in str(task["N"]).split("x"))


def g_w_of(token: str):
    g = tuple(float(v) for v in token.split("x"))
    return g[0] if len(g) == 1 else g
