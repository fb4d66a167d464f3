"""Labelled files of a single run (docs/cli.md): `msat predict --nc FILE.nc`, the results in the sweep's
labelled form (runtime.labelled, every option a length-1 dimension), and `msat sample --draws
FILE.nc`, the sampler's raw draws as ArviZ InferenceData (netCDF through h5netcdf)."""
from __future__ import annotations

import sys

import numpy as np

from ..errors import InputError
from .console import utf8


def _chi_tokens(chis) -> str:
    from ..grid import token

    return ",".join(token(c) for c in chis)


def _method_label(args) -> str:
    """The method as asked, as a sweep labels it (the order that ran is the variable `order`): a failed first
    point labelled the file otherwise than a converged one did."""
    method = args.method or ("loop" if args.activation == "linear" else "adaptive")
    return method if args.order is None or method not in ("loop", "adaptive") else f"{method}:{args.order}"


def predict_nc(path, results, ds, args, chis) -> None:
    """The results of one `msat predict` as a netCDF file in the sweep's labelled form."""
    from .. import grid, labelled

    if args.widths is not None:
        n = dict(widths="x".join(p.strip() for p in str(args.widths).split(",")))
    else:
        n = dict(N=str(args.N), depth=None if args.depth is None else str(args.depth))
    g = grid.build(**n, chi=_chi_tokens(chis), kappa=str(args.kappa), g_v=str(args.g_v),
                   g_w="x".join(p.strip() for p in str(args.g_w).split(",")), activation=args.activation,
                   method=_method_label(args), dressed=str(bool(args.dressed)).lower(),
                   seed=str(args.seed), P=str(ds.P), D=str(ds.D), P_test=str(ds.P_test), estimator=args.estimator,
                   readout=args.readout, **{k: None if getattr(args, k) is None else str(getattr(args, k))
                                            for k in grid.DEFAULT_COUNTS},
                   **(dict(dataset=args.dataset) if args.data is None else dict(source=str(args.data))))
    out = labelled.outputs(results, ds.P, ds.P_test, getattr(ds, "y_test", None), chis)
    labelled_ds = labelled.single(g, out, labelled.failure_note(results))
    labelled_ds.attrs.update(command=_command(args), source=utf8(ds.name), **labelled.provenance())
    _write(labelled_ds.to_netcdf, path)


#: the draws' variables in the InferenceData posterior (draw key, name, point dimension or None)
DRAWS = (("train", "train_output", "train_point"), ("test", "test_output", "test_point"),
         ("train_cvar", "train_output_cvar", "train_point"), ("test_cvar", "test_output_cvar", "test_point"),
         ("align", "kernel_alignment", None), ("dirs", "weight_overlap", "direction"))


def draws_nc(path, draws, ds, args) -> None:
    """The sampler's raw draws along the chi ladder as ArviZ InferenceData: posterior variables with
    dimensions (chain, draw, chi[, point]); with the marginal readout train/test_output are the
    conditional means given the hidden weights and *_cvar their conditional variances; the
    acceptance probability in sample_stats, y in observed_data."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ announces its refactor on import
        import arviz as az

    from .. import labelled

    chis = [float(d["chi"]) for d in draws]
    posterior, dims = {}, {}
    for key, name, pdim in DRAWS:
        if key not in draws[0] or (pdim is not None and np.shape(draws[0][key])[-1] == 0):
            continue
        posterior[name] = np.stack([d[key] for d in draws], axis=2)  # (chain, draw, chi, ...)
        dims[name] = ["chi"] + ([pdim] if pdim else [])
    accept = np.stack([d["accept"] for d in draws], axis=2)
    converged = np.array([bool(d.get("converged", True)) for d in draws])  # a failed point's chains stay, marked
    idata = az.from_dict(
        posterior=posterior, sample_stats={"acceptance_rate": accept}, observed_data={"y": ds.y},
        constant_data={"converged": converged},
        coords={"chi": chis, "train_point": np.arange(ds.P), "test_point": np.arange(ds.P_test)},
        dims=dict(dims, acceptance_rate=["chi"], y=["train_point"], converged=["chi"]),
        attrs=dict(inference_library="msat", readout=args.readout, command=_command(args),
                   **labelled.provenance()))
    _write(lambda p: idata.to_netcdf(str(p)), path)


def _command(args) -> str:
    return getattr(args, "command_line", None) or utf8(" ".join(sys.argv))


def _write(writer, path) -> None:
    try:
        writer(path)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror or err}") from None
