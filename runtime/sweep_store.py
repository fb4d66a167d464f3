"""The Zarr store of `msat sweep` (docs/cli.md, runtime.sweep): made, checked on `--resume`, and its attributes set.

A store is marked as a sweep's by its attribute `msat_sweep` (the sweep's parameters, runtime.grid), written
last, once every array of the template is in place: a sweep killed while it made its store leaves a folder
that `--resume` names as incomplete (no task ran in it) instead of one it accepts and then fails on. Stores
made before the marker came last are checked for the template's arrays too. Every attribute change is
followed by consolidating the metadata (`.zmetadata`, which xarray.open_zarr reads first), and a resume
consolidates it anew: a sweep killed while it added an observable's array left the array on disk but not in
`.zmetadata`.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from . import labelled
from .errors import InputError

#: the attribute that marks a finished store as a sweep's (its parameters, as JSON)
MARK = "msat_sweep"


def writable(path):
    """InputError unless the store's folder exists and can be written (before any work)."""
    parent = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise InputError(f"cannot write {path}: its folder {parent} does not exist or is not writable")


def _comparable(was: dict, g) -> tuple[dict, dict]:
    """The store's parameters and this sweep's, as JSON reads them; a store made before the data file's identity
    was kept (no 'data') is compared without it: it stays resumable."""
    now = json.loads(g.spec_json())
    if "data" not in was:
        now.pop("data", None)
    return was, now


def first_change(was: dict, g) -> str:
    """': N was 20,40, now 40,20 (...)': the first option whose list differs from the store's ('' if none)."""
    was, now = _comparable(was, g)
    if "dataset" not in was:  # its arrays lack the dimension: no task of this sweep could be written into them
        return " (an earlier msat, whose stores had no dataset dimension): sweep into a new store"
    if was.get("widths_given") != now.get("widths_given"):  # first: it changes N's spelling and the depth too
        return f": the widths were given with --{was.get('widths_given')}, now with --{now.get('widths_given')}"
    for key in (k for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)):
        if key == "data":
            a, b = was.get(key), now.get(key)
            if not (isinstance(a, dict) and isinstance(b, dict)):  # a data file against a built-in set: `source` says
                continue
            if a.get("target") != b.get("target"):
                return f": the data's target column was {a.get('target')}, now {b.get('target')}"
            return (f": the data file's contents differ (SHA-256 was {str(a.get('sha256'))[:12]}..., "
                    f"now {str(b.get('sha256'))[:12]}...)")
        old, new = ([str(x).lower() for x in (v if isinstance(v, list) else [v])] for v in (was.get(key), now.get(key)))
        if old == new:  # one spelling for two values (1 and '1'): the real difference is further on
            continue
        again = sorted(old) == sorted(new)
        return (f": {key} was {','.join(old)}, now {','.join(new)}"
                + (" (the same values in another order: give them in the store's order)" if again else ""))
    return ""


def data_identity(path, target) -> dict:
    """What identifies a --data file's contents for --resume: its target column and the SHA-256 of its bytes."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"target": target, "sha256": h.hexdigest()}


def _template_names(g) -> tuple:
    """Every array the template of a store holds (variables and coordinates)."""
    return (labelled.SCALARS + ("converged", "done", "note") + tuple(labelled.POINTS) + tuple(labelled.TARGETS)
            + g.names)


def _open(path, mode):
    import zarr

    # the folder as it is, not as `.zmetadata` last said (a kill can leave arrays it does not list)
    return zarr.open_group(str(path), mode=mode, use_consolidated=False)


def set_attrs(path, **attrs) -> None:
    """Set the store's attributes (None deletes one) and consolidate its metadata."""
    import zarr

    root = _open(path, "r+")
    for k, v in attrs.items():
        if v is not None:
            root.attrs[k] = v
        elif k in root.attrs:
            del root.attrs[k]
    zarr.consolidate_metadata(str(path))


def _resume(path, g):
    """The `done` flags of the store at `path` if it is this sweep's, whole; InputError (exit 2) otherwise. The
    store's metadata is consolidated anew, and an observable's array whose making was interrupted (no dimension
    names: xarray cannot read it, and no task wrote to it) is removed, for ZarrWriter to make again."""
    import zarr

    try:
        root = _open(path, "r")
        attrs, arrays = dict(root.attrs), set(root.array_keys())
    except Exception:  # a file, or a folder that holds no Zarr group: zarr raises several kinds
        raise InputError(f"--resume: {path} is not a sweep's store") from None
    incomplete = (f"--resume: {path} is an incomplete sweep store (its making was interrupted before any task "
                  "ran): delete it and run the sweep again")
    if MARK not in attrs:
        if {"command", "generated_hash"} <= set(attrs):  # written first, with the arrays: a store being made
            raise InputError(incomplete)
        raise InputError(f"--resume: {path} is not a sweep's store")
    try:
        was = json.loads(attrs[MARK])
    except (TypeError, ValueError):
        raise InputError(f"--resume: {path} is not a sweep's store") from None
    if not isinstance(was, dict):
        raise InputError(f"--resume: {path} is not a sweep's store")
    old, now = _comparable(was, g)
    if old != now:
        raise InputError(f"--resume: {path} was made by a sweep with other parameters{first_change(was, g)}")
    if "widths" in g.names and "widths" not in arrays and "N" in arrays and "done" in arrays:
        raise InputError(f"--resume: {path} was made by an earlier msat, whose stores kept the --widths items on "
                         "the dimension N (now: widths): run the sweep again with another --out")
    if any(k not in arrays for k in _template_names(g)):  # a store made before the marker came last
        raise InputError(incomplete)
    root = _open(path, "r+")
    for k in arrays - set(_template_names(g)):
        if "_ARRAY_DIMENSIONS" not in root[k].attrs and root[k].shape == g.shape():
            del root[k]
    zarr.consolidate_metadata(str(path))
    return np.asarray(root["done"][...])


def prepare(path, g, source, resume, command=None):
    """The store's `done` flags: those of the store at `path` with --resume, else of a new store made there."""
    if resume and os.path.exists(path):
        return _resume(path, g)
    if os.path.exists(path) and not resume:
        if not os.path.isdir(path):  # --resume would refuse it too: a store is a folder
            raise InputError(f"{path} is a file, not a sweep's store: name another --out")
        raise InputError(f"{path} exists: use --resume to continue it, or another --out")
    if isinstance(source, tuple):
        P_max, Pt_max = max(g.coords["P"]), max(g.coords["P_test"])
    else:
        P_max, Pt_max = source.P, source.P_test
    ds, enc = labelled.template(g, P_max, Pt_max)
    ds.attrs.update(command=command or " ".join(sys.argv), **labelled.provenance())
    try:
        ds.to_zarr(path, mode="w", encoding=enc, zarr_format=2)  # v2: fixed-width strings are specified there
        set_attrs(path, **{MARK: g.spec_json()})  # last: the store is whole
    except OSError as err:  # root may pass os.access on a folder that still refuses files (/proc)
        raise InputError(f"cannot write {path}: {err.strerror or err}") from None
    return np.asarray(ds["done"].values)


def remove(path) -> None:
    """Delete a store none of whose tasks is valid (bad input: no store is left, as when refused before work)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)
