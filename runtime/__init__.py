"""msat.runtime: numbers at run time (NumPy, SciPy, numba; no SymPy on the hot path).

The public API (docs/cli.md): ``predict``, ``sample`` and ``run`` are functions.
Layers, top to bottom: app (cli, run, plots, report) -> predict -> methods -> numerics ->
data, spectral, params, results, errors (docs/architecture.md).
"""
from .app.run import run
from .predict import predict, sample
from .results import Result

__all__ = ["predict", "sample", "run", "Result"]
