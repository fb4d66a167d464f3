"""The labelled form of results (docs/cli.md, `msat sweep`, `msat predict --nc`): one xarray Dataset
whose dimensions are the swept options (runtime.grid.DIMS, chi last) and the train/test points.

A task (one point of every option but chi) fills its region: per-chi scalars, per-chi point arrays,
the test targets of its data set when it has them, its `note` (why a method does not cover the
point) and, last, its `done` flag. Scalar observables a method reports become variables the first
time they appear, NaN elsewhere. `ZarrWriter` writes a task's region straight into the Zarr arrays
(chunks are one task wide, so concurrent tasks never share a chunk); `single` gives the Dataset of a
one-task grid for `msat predict --nc`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import grid as _grid
from .errors import InputError, missing_generated

#: per (task, chi) outputs and per (task, chi, point) outputs (dimension of the points)
SCALARS = ("s_mean", "s_var", "seconds", "chi_value", "order")  # order: what ran (adaptive's default depends on P)
POINTS = {"train_mean": "train_point", "test_mean": "test_point", "test_var": "test_point",
          "train_mean_mcse": "train_point", "test_mean_mcse": "test_point", "train_var": "train_point",
          "train_var_mcse": "train_point", "test_var_mcse": "test_point"}
#: per task, per point: the data set's test targets (NaN when it has none)
TARGETS = {"test_target": "test_point"}
#: scalar keys of a result (beside its observables) kept as variables where a method reports them
EXTRA_SCALARS = ("rhat_max", "ess_min")
NOTE = "U400"


def outputs(results, P: int, P_test: int, y_test=None, chis=None) -> dict:
    """The arrays of one task from its results along the chi ladder `chis` (NaN where a point failed, and where
    the ladder stopped before it: a failed point ends it)."""
    chis = [r.chi for r in results] if chis is None else list(chis)
    n = len(chis)
    out = _blank(chis, P, P_test, y_test)
    obs = {}
    for j, r in enumerate(results):
        out["converged"][j] = bool(r.converged)
        out["seconds"][j] = r.seconds
        if not r.has_values:
            continue
        d = r.to_dict(strict_json=False)  # undefined numbers stay NaN in the arrays
        scalars = dict(d.get("observables") or {}, **{k: d[k] for k in EXTRA_SCALARS if k in d})
        for k, v in scalars.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and "iterations" not in k:
                obs.setdefault(k, np.full(n, np.nan))[j] = v
        for k in ("s_mean", "s_var", "order"):
            out[k][j] = np.nan if d.get(k) is None else d[k]
        for k in POINTS:
            v = d.get(k)
            if v is not None and np.size(v):
                out[k][j] = np.asarray(v, float)
    out["observables"] = obs
    return out


def _blank(chis, P: int, P_test: int, y_test=None) -> dict:
    """A task's arrays along its chi ladder, NaN and not converged (the test targets filled)."""
    n = len(chis)
    out = {k: np.full(n, np.nan) for k in SCALARS}
    out["chi_value"] = np.array([float(c) for c in chis])
    out["converged"] = np.zeros(n, bool)
    for k, dim in POINTS.items():
        out[k] = np.full((n, P if dim == "train_point" else P_test), np.nan)
    out["test_target"] = np.full(P_test, np.nan) if y_test is None else np.asarray(y_test, float)
    out["observables"] = {}
    return out


def empty(g, task, P: int, P_test: int, y_test=None) -> dict:
    """The arrays of a task no method point covers: NaN, not converged, no seconds."""
    return _blank(g.chi_values(_grid.widths_of(g, task)[-1]), P, P_test, y_test)


def _coordinate(g, dim):
    """A dimension's labels; chi's are its numbers unless a relative token ("sqrtN", "N") is among them, whose
    numbers then differ from task to task (the variable chi_value holds them): ``sel(chi=2.0)`` works on a store
    of plain chi values, as the contract reads."""
    labels = g.coords[dim]
    if dim == "chi" and not any(c in _grid.RELATIVE for c in labels):
        return np.array([float(c) for c in labels])
    return labels


def template(g, P_max: int, Pt_max: int):
    """The whole store, NaN and not done, with its chunk encoding (one task per chunk)."""
    import xarray as xr

    dims = list(g.names)
    tdims = dims[:-1]
    shape, tshape = g.shape(), g.shape()[:-1]
    size = {"train_point": P_max, "test_point": Pt_max}
    v = {k: (dims, np.full(shape, np.nan)) for k in SCALARS}
    v["converged"] = (dims, np.zeros(shape, bool))
    for k, pd in POINTS.items():
        v[k] = (dims + [pd], np.full(shape + (size[pd],), np.nan))
    for k, pd in TARGETS.items():
        v[k] = (tdims + [pd], np.full(tshape + (size[pd],), np.nan))
    v["done"] = (tdims, np.zeros(tshape, bool))
    v["note"] = (tdims, np.full(tshape, "", dtype=NOTE))
    ds = xr.Dataset(v, coords={name: _coordinate(g, d) for name, d in zip(dims, _grid.DIMS)})
    enc = {k: {"chunks": (1,) * len(tdims) + ds[k].shape[len(tdims):]} for k in ds.data_vars}
    return ds, enc


def _region(a, width):
    """A task's array padded with NaN along its last axis to the store's point count (data sets of
    different P share a store)."""
    if a.shape[-1] == width:
        return a
    b = np.full(a.shape[:-1] + (width,), np.nan)
    b[..., :a.shape[-1]] = a
    return b


def failure_note(results) -> str:
    """Why the points of a ladder that did not converge failed: a task's `note` in the store."""
    return "; ".join(f"chi = {r.chi:g}: {r.error}" for r in results if not r.converged and r.error)


def single(g, out: dict, note: str = ""):
    """The labelled Dataset of a one-task grid (every option length 1 but chi): `msat predict --nc`."""
    ds, _ = template(g, out["train_mean"].shape[1], out["test_mean"].shape[1])
    for k in SCALARS + ("converged",) + tuple(POINTS) + tuple(TARGETS):
        ds[k].values[...] = out[k].reshape(ds[k].shape)
    for k, v in out["observables"].items():
        ds[k] = (list(g.names), v.reshape(g.shape()))
    ds["note"].values[...] = note
    ds["done"].values[...] = True
    return ds


def msat_version() -> str:
    """The installed distribution's version ("unknown" when msat runs from a source tree not installed)."""
    from importlib import metadata

    try:
        return metadata.version("msat")
    except metadata.PackageNotFoundError:
        return "unknown"


def provenance(folder=None) -> dict:
    """msat's version and the SHA-256 of the generated code as installed (`folder`, default msat.generated): its
    MANIFEST and the bytes of every module it lists, so a hand edit changes the hash; `generated_edited` names
    (comma-separated, empty when none) the modules whose bodies no longer match their MANIFEST entries (the
    emitter's hash of the text after the header; `msat derive --check` shows the difference)."""
    import hashlib
    from importlib import resources

    folder = resources.files("msat.generated") if folder is None else Path(folder)
    manifest = folder.joinpath("MANIFEST").read_bytes()
    total, edited = hashlib.sha256(manifest), []
    for line in manifest.decode().splitlines():
        name, recorded = line.split()
        try:
            raw = folder.joinpath(name).read_bytes()
        except FileNotFoundError:  # an incomplete emission: the line a module missing at import time gets
            lost = ModuleNotFoundError(name, name="msat.generated." + name.rsplit(".", 1)[0])
            raise InputError(missing_generated(lost)) from None
        total.update(raw)
        lines = raw.decode("utf-8", "replace").splitlines(keepends=True)
        start = next((i for i, ln in enumerate(lines) if not ln.startswith("#")), len(lines))
        if hashlib.sha256("".join(lines[start:]).encode()).hexdigest() != recorded:
            edited.append(name)
    return {"msat_version": msat_version(), "generated_hash": total.hexdigest(), "generated_edited": ",".join(edited)}


class ZarrWriter:
    """Writes finished tasks into their regions of a store made from `template` (outputs first,
    the `done` flag last, so a crash mid-write leaves the task not done)."""

    def __init__(self, path, g):
        import zarr

        self.path, self.g = str(path), g
        # the arrays on disk, not those `.zmetadata` lists: an array it lacks would be made a second time
        self.root = zarr.open_group(self.path, mode="r+", use_consolidated=False)
        self.arrays = {k: self.root[k] for k in self.root.array_keys()}

    def write(self, idx, out: dict, note: str = "") -> None:
        arrays = self.arrays
        for k in SCALARS + ("converged",):
            arrays[k][idx] = out[k]
        for k in tuple(POINTS) + tuple(TARGETS):
            if np.isnan(out[k]).all():
                continue  # the store is NaN there already (a region is only ever written by its own task)
            arrays[k][idx] = _region(out[k], arrays[k].shape[-1])
        for k, v in out.get("observables", {}).items():
            if k not in arrays:
                self._add(k)
            arrays[k][idx] = v
        arrays["note"][idx] = np.array(note or "", dtype=NOTE)
        arrays["done"][idx] = True

    def _add(self, name):
        """A scalar observable first seen: its variable over (task dims, chi), NaN elsewhere."""
        import xarray as xr

        dims = list(self.g.names)
        shape = self.g.shape()
        attrs = dict(self.root.attrs)
        new = xr.Dataset({name: (dims, np.full(shape, np.nan))}, attrs=attrs)  # keeps the store's attributes
        new.to_zarr(self.path, mode="a", encoding={name: {"chunks": (1,) * (len(dims) - 1) + (shape[-1],)}})
        import zarr

        self.root = zarr.open_group(self.path, mode="r+", use_consolidated=False)
        self.arrays[name] = self.root[name]
