"""derive.deep_chain (docs/theory.md §2d): the closed forms of one layer of the linear chain against
SymPy derivatives of the explicit log-determinant W(T; Sigma) = -(1/2) logdet(I - 2 Sigma T), and the
test forms against the conditional law of a Gaussian tilted on its train block (NumPy, 3 + 2 points)."""
import numpy as np
import sympy as sp

from msat import generated
from msat.derive import deep_chain


def _explicit(n):
    S = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"s{i}{j}"))
    T = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"t{i}{j}"))
    return S, T


def test_forward_and_backward_are_the_derivatives_of_the_log_partition():
    S, T = _explicit(2)
    W = deep_chain.layer_log_partition(S, T)
    rng = np.random.default_rng(0)
    vals = {**{S[i, j]: v for (i, j), v in np.ndenumerate(0.3 * rng.standard_normal((2, 2)))},
            **{T[i, j]: v for (i, j), v in np.ndenumerate(0.3 * rng.standard_normal((2, 2)))}}
    Sn = np.array(S.subs(vals), dtype=float)
    Tn = np.array(T.subs(vals), dtype=float)
    mod = generated.deep_linear_adaptation()
    C = mod.layer_kernel(Sn, Tn)
    back = mod.layer_backward(Sn, Tn, 1.0, 1.0, 1.0)
    for i in range(2):
        for j in range(2):  # d/dX_ij tr(F^T dX) = F_ij: the forms are gradients up to a transpose
            assert abs(float(sp.diff(W, T[i, j]).subs(vals)) - C[j, i]) < 1e-13
            assert abs(float(sp.diff(W, S[i, j]).subs(vals)) - back[j, i]) < 1e-13
    assert np.allclose(mod.layer_backward(Sn, Tn, 1.5, 30.0, 20.0), 1.5 * 1.5 * back, rtol=1e-14)


def test_test_forms_are_the_tilted_conditional_law():
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((5, 8))
    J = Z @ Z.T / 8  # joint covariance of 3 train and 2 test preactivations
    S, Ss, Sss = J[:3, :3], J[:3, 3:], J[3:, 3:]
    T = 0.1 * rng.standard_normal((3, 3))
    T = T + T.T
    # the tilted joint law is Gaussian with precision J^-1 - 2 [[T, 0], [0, 0]]
    Tj = np.zeros((5, 5))
    Tj[:3, :3] = T
    post = np.linalg.inv(np.linalg.inv(J) - 2 * Tj)
    mod = generated.deep_linear_adaptation()
    np.testing.assert_allclose(mod.layer_kernel(S, T), post[:3, :3], rtol=1e-10)
    Cs, css = mod.layer_test_forms(S, T, Ss, np.diag(Sss)[:, None])
    np.testing.assert_allclose(Cs, post[:3, 3:], rtol=1e-10)
    np.testing.assert_allclose(css[:, 0], np.diag(post[3:, 3:]), rtol=1e-10)
