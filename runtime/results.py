"""The result object of one chi point (the contract in docs/cli.md): values and metadata together.

Attributes hold NumPy arrays (NaN where a number is undefined); ``to_dict()`` gives the JSON object
of the contract (lists, the keys in contract order, None where the JSON has null) and item access
reads that object, so ``r["test_mean"]`` works as it does on the JSON. ``_repr_html_`` shows a
summary in notebooks; ``to_xarray`` gives a labelled xarray.Dataset (dimensions ``train_point``,
``test_point``).
"""
from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


CHI_OUTSIDE = "(allowed, but outside the regimes between standard and mean-field scaling)"


def chi_warnings(N: int, chi: float) -> list[str]:
    """The contract's warning for chi outside [1, N] (allowed, docs/theory.md §1)."""
    if chi < 1 or chi > N:
        return [f"chi = {chi:g} lies outside [1, N] = [1, {N}] {CHI_OUTSIDE}"]
    return []


#: chi/N from which a kernel-adaptation result says that its test variance leaves out the kernel's fluctuations
VARIANCE_NOTE_FROM = 0.1


def _attr(key, value):
    """A parameter as a netCDF attribute (which holds no null and no bool): a Monte Carlo count left to the
    method's default is 0, as in a sweep's store; another null is left out."""
    if value is None:
        return 0 if key in ("mc_samples", "samples", "chains") else None
    return str(value) if isinstance(value, bool) else value


def adaptive_variance_note(params, chi: float) -> list[str]:
    """Kernel adaptation's test variance is the outputs' variance at the adapted kernel; the test mean's variance
    over the kernel's own fluctuations, of relative order chi/N, is not in it (docs/theory.md §2b), except at
    order 2, where the field's loop carries it (§2c, §2e)."""
    if params.method != "adaptive" or params.order == 2 or not params.P_test:  # no test points: no test_var
        return []
    out = []
    if chi / params.N >= VARIANCE_NOTE_FROM:
        out.append(f"test_var is the variance at the adapted kernel: it leaves out the kernel's own fluctuations, a "
                   f"part of relative order chi/N = {chi / params.N:.2g} (at chi = N about half the variance or more: "
                   "45-82% in linear checks, more with test points off the inputs' span and with depth, "
                   "docs/theory.md §2b); order 2, the loop series (linear networks) and the sampler carry it")
    widths = params.widths or (params.N,)
    ratio = params.P / min(widths)
    if len(widths) > 1 and params.activation != "linear" and ratio >= VARIANCE_NOTE_FROM:
        # measured against sampled networks (erf, P = 8, widths 40, 40, chi = 1: 0.85-0.89 of theirs, 8 MCSE;
        # one layer of 40 gives 0.93-0.95, linear networks at depth 1.02-1.05 of the exact variance)
        out.append(f"at depth test_var also misses the lower layers' kernel fluctuations, at any chi, a part of "
                   f"relative order P/N = {ratio:.2g}: measured 11-15% under sampled networks for erf at P/N = 0.2, "
                   "chi = 1; --method sample carries it")
    return out


def _json(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: _json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    return v


def strict(v):
    """NaN or an infinity (a point without a result, an undefined diagnostic) as None, null in JSON: the
    contract's JSON stays standard."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: strict(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [strict(x) for x in v]
    return v


@dataclass
class Result(Mapping):
    """Posterior predictions at one chi, or the record of a point that failed (``converged`` False,
    ``error`` and ``diagnostics`` set, no values). A sampled point whose chains disagree keeps its values
    with ``converged`` False and ``error`` saying why (``has_values``)."""

    method: str | None
    order: int | None
    params: dict
    chi: float
    train_mean: np.ndarray | None = None
    test_mean: np.ndarray | None = None
    test_var: np.ndarray | None = None
    s_mean: float | None = None
    s_var: float | None = None
    converged: bool = True
    seconds: float = 0.0
    warnings: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # method-specific keys (observables, *_mcse, ...)
    error: str | None = None
    diagnostics: dict = field(default_factory=dict)

    @classmethod
    def failed(cls, chi: float, err: Exception) -> "Result":
        diag = getattr(err, "diagnostics", {}) or {}
        return cls(method=None, order=None, params={}, chi=chi, converged=False, error=str(err),
                   diagnostics={k: float(v) if isinstance(v, (int, float)) else str(v)
                                for k, v in diag.items()})

    @classmethod
    def point(cls, params, chi: float, values: dict, extra: dict | None = None) -> "Result":
        """A converged point of a method: ``params`` (a runtime.params.Params), the output values
        (train_mean, test_mean, test_var, optional s_mean, s_var) and method-specific keys."""
        return cls(method=params.method, order=params.order, params=params.public(), chi=float(chi),
                   train_mean=np.asarray(values["train_mean"], dtype=float),
                   test_mean=np.asarray(values["test_mean"], dtype=float),
                   test_var=np.asarray(values["test_var"], dtype=float),
                   s_mean=values.get("s_mean"), s_var=values.get("s_var"),
                   warnings=chi_warnings(params.N, chi) + adaptive_variance_note(params, chi)
                   + list(getattr(params, "ignored", ())),
                   extra=dict(extra or {}))

    @property
    def has_values(self) -> bool:
        """Whether the point has outputs (every converged point; a sampled one whose chains disagree too)."""
        return self.train_mean is not None

    def unconverged(self, error: str, diagnostics: dict) -> "Result":
        """Mark a point with values as not converged (its chains disagree): values kept, ``error`` says why."""
        self.converged, self.error = False, error
        self.diagnostics = {k: float(v) for k, v in diagnostics.items()}
        return self

    def to_dict(self, strict_json: bool = True) -> dict:
        """The contract's JSON object; NaN and infinities (undefined numbers) as None, null in JSON, unless
        not `strict_json` (floats kept, for arrays that hold NaN)."""
        if not self.has_values:
            out = {"chi": self.chi, "converged": False, "error": self.error,
                   "diagnostics": _json(dict(self.diagnostics)), "seconds": float(self.seconds),
                   "warnings": list(self.warnings)}
            return strict(out) if strict_json else out
        out = {
            "method": self.method,
            "order": self.order,
            "params": dict(self.params, chi=self.chi),
            "chi": self.chi,
            "train_mean": _json(np.asarray(self.train_mean)),
            "test_mean": _json(np.asarray(self.test_mean)),
            "test_var": _json(np.asarray(self.test_var)),
            "s_mean": None if self.s_mean is None else float(self.s_mean),
            "s_var": None if self.s_var is None else float(self.s_var),
            "converged": bool(self.converged),
            "seconds": float(self.seconds),
            "warnings": list(self.warnings),
        }
        if not self.converged:
            out.update(error=self.error, diagnostics=_json(dict(self.diagnostics)))
        out.update(_json(self.extra))
        return strict(out) if strict_json else out

    def __getattr__(self, name):
        # only reached when no field has the name: a method's own keys (test_mean_mcse, rhat_max, observables, ...)
        # read as attributes too, as the contract's keys do
        extra = self.__dict__.get("extra")
        if extra is not None and name in extra:
            v = extra[name]
            if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) for x in v):
                return np.asarray(v, dtype=float)
            return v
        raise AttributeError(f"{type(self).__name__} has no attribute or key {name!r}")

    # Mapping over the JSON object
    def __getitem__(self, key):
        return self.to_dict()[key]

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self):
        return len(self.to_dict())

    def _repr_html_(self) -> str:
        rows = [("chi", f"{self.chi:g}"), ("converged", str(self.converged))]
        if not self.converged:
            rows += [("error", self.error)]
        if self.has_values:
            rows += [("method", f"{self.method}" + ("" if self.order is None else f", order {self.order}")),
                     ("N, kappa", f"{self.params.get('N')}, {self.params.get('kappa')}"),
                     ("s_mean, s_var", "-" if self.s_mean is None else f"{self.s_mean:.6g}, {self.s_var:.3g}"),
                     ("train mean (first 5)", np.array2string(np.asarray(self.train_mean)[:5], precision=4)),
                     ("test mean (first 5)", np.array2string(np.asarray(self.test_mean)[:5], precision=4)),
                     ("test variance (first 5)", np.array2string(np.asarray(self.test_var)[:5], precision=4)),
                     ("seconds", f"{self.seconds:.3g}")]
            rows += [(k, f"{self.extra[k]:.4g}") for k in ("rhat_max", "ess_min") if k in self.extra]
        rows += [("warning", w) for w in self.warnings]
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in rows)
        return f"<table><caption>msat result</caption>{body}</table>"

    def to_xarray(self):
        """xarray.Dataset: train_mean (train_point), test_mean and test_var (test_point), a method's own
        per-point lists (*_mcse, train_var) and numbers (rhat_max, ess_min) where present, s_mean and s_var
        as variables; params as attributes (order -1 where the JSON has null: netCDF attributes hold none)."""
        import xarray as xr

        if not self.has_values:
            raise ValueError(f"chi = {self.chi:g} did not converge: {self.error}")
        data = {"train_mean": ("train_point", np.asarray(self.train_mean)),
                "test_mean": ("test_point", np.asarray(self.test_mean)),
                "test_var": ("test_point", np.asarray(self.test_var))}
        sizes = {"train": len(data["train_mean"][1]), "test": len(data["test_mean"][1])}
        for key, v in self.extra.items():  # a method's own per-point lists and numbers (*_mcse, train_var, rhat_max)
            side = key.partition("_")[0]
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
                data[key] = ((), float(v))
            elif side in sizes and np.ndim(v) == 1 and len(v) == sizes[side] and np.asarray(v).dtype.kind in "fiu":
                data[key] = (f"{side}_point", np.asarray(v, dtype=float))
        for key in ("s_mean", "s_var"):
            data[key] = ((), np.nan if getattr(self, key) is None else float(getattr(self, key)))
        data["converged"] = ((), bool(self.converged))  # a sampled point whose chains disagree has values too
        data["seconds"] = ((), float(self.seconds))
        attrs = {"method": self.method, "order": -1 if self.order is None else self.order, "chi": self.chi,
                 **{k: _attr(k, v) for k, v in self.params.items() if _attr(k, v) is not None}}
        if self.error:
            attrs["error"] = self.error
        if self.warnings:
            attrs["warnings"] = "\n".join(self.warnings)
        return xr.Dataset(data, attrs=attrs)
