"""Shared fixtures. Kernels compile once (numba cache=True) and are shared by every test."""
import numpy as np
import pytest

from msat.runtime import spectral


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
