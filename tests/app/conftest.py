"""Shared by the CLI tests: a small data file."""
import numpy as np
import pytest


@pytest.fixture()
def npz(tmp_path):
    """X (12 x 7), sign targets and four test points, as an .npz file."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 7))
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=np.sign(X[:, 0]), X_test=rng.standard_normal((4, 7)))
    return path
