"""Figures of a sweep store (`msat sweep --plot STORE`, docs/cli.md): a quantity against one swept
option, one line per value of another (error against width per method, on log axes), or a heat map
over two options (a phase diagram over (N, chi)), one panel per value of the third.

Quantities: any variable of the store (a per-point variable is reduced to its root mean square over
the points) and `test_error`, the RMS over test points of test_mean minus a reference: a method of
the sweep (`--reference exact`; by default exact, else the sampler) or the data's test targets
(`--reference targets`). Seeds are averaged (error bars: their standard error); every other option
with several values must be fixed with `--sel option=value`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .plots import _save, plt

POINT_DIMS = ("train_point", "test_point")


def open_store(path):
    """A sweep store (.zarr) or a labelled file of `msat predict --nc` (.nc) as one Dataset."""
    import xarray as xr

    p = Path(path)
    if not p.exists():
        raise InputError(f"--plot: no store at {p}")
    try:
        return xr.open_dataset(p, engine="h5netcdf") if p.suffix == ".nc" else xr.open_zarr(p)
    except Exception as err:  # noqa: BLE001 - anything unreadable is the user's file
        raise InputError(f"--plot: cannot read {p} as a sweep store ({type(err).__name__})") from None


def _coord_value(st, dim, text):
    values = list(st[dim].values)
    for v in values:
        if str(v) == text:
            return v
        try:
            if float(v) == float(text):
                return v
        except (TypeError, ValueError):
            pass
    raise InputError(f"--sel {dim}={text}: the store has {dim} = {', '.join(str(v) for v in values)}")


def select(st, sel):
    """Apply `option=value` selections (values matched against the coordinates as text or number)."""
    picks = {}
    for item in sel or ():
        dim, eq, text = str(item).partition("=")
        dim = dim.strip().replace("-", "_")
        if not eq or dim not in st.dims or dim in POINT_DIMS:
            raise InputError(f"--sel takes option=value with an option of the store "
                             f"({', '.join(d for d in st.dims if d not in POINT_DIMS)}), got {item!r}")
        if dim in picks:  # the last one would win in silence
            raise InputError(f"--sel {dim} is given twice: select one value of each option")
        picks[dim] = [_coord_value(st, dim, text.strip())]
    return st.sel(picks) if picks else st


def _reference(st, reference):
    methods = [str(m) for m in st["method"].values]
    if reference is None:
        reference = next((m for m in methods if m.split(":")[0] == "exact"),
                         next((m for m in methods if m.split(":")[0] == "sample"), "targets"))
    if reference == "targets":
        if "test_target" not in st or not np.isfinite(st["test_target"].values).any():
            raise InputError("test_error needs a reference: sweep an exact or sample method, or data "
                             "with test targets (--reference METHOD|targets)")
        return "targets", st["test_target"]
    match = [m for m in methods if m == reference or m.split(":")[0] == reference]
    if not match:
        raise InputError(f"--reference {reference}: not a method of the store ({', '.join(methods)}) nor 'targets'")
    return match[0], st["test_mean"].sel({"method": match[0]}, drop=True)


def quantity(st, name, reference=None):
    """(DataArray over the swept options, its label, the reference method or None)."""
    if name == "test_error":
        if st.sizes.get("test_point", 0) == 0:
            raise InputError("--y/--color test_error: the store has no test points (P_test = 0)")
        ref, target = _reference(st, reference)
        err = st["test_mean"] - target
        label = f"RMS test error vs {'test targets' if ref == 'targets' else ref}"
        return np.sqrt((err ** 2).mean("test_point", skipna=False)), label, ref
    if name not in st.data_vars or name in ("done", "note"):
        names = sorted(v for v in st.data_vars if v not in ("done", "note"))
        raise InputError(f"--y/--color {name!r} is not a quantity of the store (test_error, {', '.join(names)})")
    q = st[name].astype(float)
    for d in POINT_DIMS:
        if d in q.dims:
            if q.sizes[d] == 0:  # an RMS over no points is no number (and numpy warns on stderr)
                raise InputError(f"--y/--color {name}: the store has no {d.replace('_', ' ')}s")
            return np.sqrt((q ** 2).mean(d, skipna=False)), f"RMS {name} over {d.replace('_', ' ')}s", None
    return q, name, None


def _reduce(q, keep):
    """Average over seeds (with their standard error); every other extra option must be length 1."""
    se = None
    if "seed" in q.dims and "seed" not in keep and q.sizes["seed"] > 1:
        n = q.sizes["seed"]
        se = q.std("seed", ddof=1, skipna=False) / np.sqrt(n)
        q = q.mean("seed", skipna=False)
    for d in q.dims:
        if d not in keep and q.sizes[d] > 1:
            vals = ", ".join(str(v) for v in q[d].values[:6])
            raise InputError(f"--plot: the store has {q.sizes[d]} values of {d} ({vals}): choose one with "
                             f"--sel {d}=VALUE or show it with --x/--y/--hue")
    drop = [d for d in q.dims if d not in keep]
    return q.squeeze(drop, drop=True), (None if se is None else se.squeeze(drop, drop=True))


def _numeric(values):
    try:
        x = np.array([float(v) for v in values])
    except (TypeError, ValueError):
        return None
    return x if np.all(np.isfinite(x)) else None


def _fixed(st, shown, inches):
    """The options held at one value, for a title wrapped to the figure's width (one line ran past both edges):
    a Monte Carlo count of 0 (the method's default, not given) is left out."""
    import textwrap

    parts = [f"{d}={st[d].values[0]}" for d in st.dims
             if d not in shown and d not in POINT_DIMS and st.sizes[d] == 1
             and not (d in ("mc_samples", "samples", "chains") and st[d].values[0] == 0)]
    return "\n".join(textwrap.wrap(", ".join(parts), width=int(15 * inches), break_long_words=False))


def plot(st, *, x=None, y="test_error", hue="method", color="test_error", reference=None, path=None):
    """Draw the figure; return (path or the open Figure, what it shows). `x` defaults to the widths: `N`, or
    `widths` in a store swept over --widths."""
    if x is None:
        x = "widths" if "widths" in st.dims else "N"
    for opt, d in (("--x", x), ("--hue", hue)):
        if d not in st.dims or d in POINT_DIMS:
            raise InputError(f"{opt} {d!r} is not an option of the store "
                             f"({', '.join(k for k in st.dims if k not in POINT_DIMS)})")
    heat = y in st.dims and y not in POINT_DIMS
    if heat and x == y:
        raise InputError(f"--x and --y are both {x}: a phase diagram needs two different options")
    q, label, ref = quantity(st, color if heat else y, reference)
    if ref not in (None, "targets") and hue == "method":
        if st.sizes["method"] == 1:  # its error against itself is zero: a flat line says nothing
            raise InputError(f"the only method left is the reference {ref}: keep other methods, or choose "
                             "--reference targets")
        q = q.drop_sel({"method": ref})  # the reference itself: zero error
    if heat:
        return _heat(st, q, label, x, y, hue, path)
    q, se = _reduce(q, {x, hue})
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    xs = _numeric(q[x].values)
    pos = xs if xs is not None else np.arange(q.sizes[x])
    for h in q[hue].values:
        line = q.sel({hue: h}).transpose(x).values
        err = None if se is None else se.sel({hue: h}).transpose(x).values
        ax.errorbar(pos, line, yerr=err, marker="o", ms=4, capsize=2, label=f"{hue} {h}" if hue != "method" else str(h))
    finite = q.values[np.isfinite(q.values)]
    if xs is not None and np.all(xs > 0) and xs.max() / xs.min() > 3:
        ax.set_xscale("log")
    if finite.size and np.all(finite > 0) and finite.max() / finite.min() > 10:
        ax.set_yscale("log")
    if xs is None:
        ax.set_xticks(pos, [str(v) for v in q[x].values])
    ax.set_xlabel(x)
    ax.set_ylabel(label)
    ax.set_title(_fixed(st, {x, hue, "seed"}, fig.get_figwidth()), fontsize=7)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _save(fig, path), label


def _heat(st, q, label, x, y, hue, path):
    from matplotlib.colors import LogNorm

    keep = {x, y} | ({hue} if hue not in (x, y) else set())
    q, _ = _reduce(q, keep)
    panels = list(q[hue].values) if hue in q.dims and hue not in (x, y) else [None]
    finite = q.values[np.isfinite(q.values)]
    norm = LogNorm(finite.min(), finite.max()) if finite.size and np.all(finite > 0) else None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 1.4, 3.6), squeeze=False,
                             layout="constrained")
    mesh = None
    for ax, h in zip(axes[0], panels):
        z = (q if h is None else q.sel({hue: h})).transpose(y, x).values
        cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")  # grey: not converged or not covered
        mesh = ax.pcolormesh(np.arange(z.shape[1] + 1), np.arange(z.shape[0] + 1), np.ma.masked_invalid(z),
                             cmap=cmap, norm=norm)
        ax.set_xticks(np.arange(z.shape[1]) + 0.5, [str(v) for v in q[x].values], fontsize=7)
        ax.set_yticks(np.arange(z.shape[0]) + 0.5, [str(v) for v in q[y].values], fontsize=7)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(str(h) if h is not None else "", fontsize=8)
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[0].tolist(), label=label + " (grey: no value)")
    fig.suptitle(_fixed(st, keep | {"seed"}, fig.get_figwidth()), fontsize=7)
    return _save(fig, path), label


def default_path(store, x, y, hue, color, heat):
    p = Path(store)
    name = f"{p.stem}_{color}_{x}_{y}.png" if heat else f"{p.stem}_{y}_vs_{x}_by_{hue}.png"
    return p.parent / name
