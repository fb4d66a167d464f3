"""msat.runtime: numbers at run time (NumPy, SciPy, numba; no SymPy on the hot path).

The public API (docs/cli.md): ``predict``, ``sample`` and ``run`` are functions.
Layers, top to bottom: app (cli, run, plots, report) -> predict -> methods -> numerics ->
data, spectral, params, results, errors (docs/architecture.md).
"""
from .numba_cache import ensure_writable

ensure_writable()  # before numba compiles (and caches) the first kernel

from .app.run import run  # noqa: E402
from .predict import predict, sample  # noqa: E402
from .results import Result  # noqa: E402

__all__ = ["predict", "sample", "run", "Result"]
