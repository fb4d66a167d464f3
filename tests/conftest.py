"""Shared fixtures. Kernels compile once (numba cache=True) and are shared by every test."""
import os

import numpy as np
import pytest

from msat.runtime import spectral


def pytest_configure(config):
    """Under pytest-xdist (the README's `-n 2`) each worker process gets one BLAS and one numba thread:
    the workers share the cores, and two threads each would only oversubscribe them. Set here, before the
    workers start, so that their BLAS libraries load with it."""
    if getattr(config.option, "numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER"):
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ.setdefault(var, "1")


def make_problem(P=8, D=12, P_test=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, D))
    y = np.tanh(X[:, 0] + 0.5 * X[:, 1])
    X_test = rng.standard_normal((P_test, D))
    return X, y, X_test


@pytest.fixture(scope="session")
def small_problem():
    X, y, X_test = make_problem()
    return X, y, X_test, spectral.spectrum(X, y, X_test, 1.0)
