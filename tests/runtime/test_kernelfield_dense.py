"""docs/theory.md §2c on the dense reference: the kernel field's first-order Laplace correction converges
to the exact posterior mean like N^-2 and beats the NNGP at every N, at chi = 1 and chi = N.

This checks the physics of the one-loop formula and the dense reference that the structured
O(n^3) implementation (runtime.kernelfield) is tested against."""
import numpy as np
import pytest

from kernelfield_dense import DenseField
from msat.runtime import data, spectral
from msat.runtime.methods import exact


@pytest.mark.slow
@pytest.mark.parametrize("regime", ["chi=1", "chi=N"])
def test_dense_one_loop_converges_like_n_minus_two(regime):
    P, D, kappa = 8, 16, 0.5
    ds = data.builtin("ising", P=P, D=D, P_test=3, seed=0)
    spec = spectral.spectrum(ds.X, ds.y, ds.X_test, 1.0)
    K = ds.X @ ds.X.T / D
    nngp = K @ np.linalg.solve(K + kappa * np.eye(P), ds.y)
    Ns = [100, 200, 400, 800]
    errs = []
    for N in Ns:
        chi = 1.0 if regime == "chi=1" else float(N)
        field = DenseField.kernel(K, ds.y, N, chi, kappa, 1.0)
        m1, m0 = field.one_loop_readout(field.saddle(K.copy()))
        ex = exact.moments(spec, N, chi, kappa, 1.0)["train_mean"]
        errs.append(np.max(np.abs(m1 - ex)))
        assert errs[-1] < np.max(np.abs(nngp - ex)) / 5
        assert errs[-1] < np.max(np.abs(m0 - ex))  # the loop term improves on its own saddle
    slope = np.polyfit(np.log(Ns), np.log(errs), 1)[0]
    assert slope <= -1.8, (slope, errs)
