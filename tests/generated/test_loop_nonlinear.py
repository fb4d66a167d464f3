"""generated.loop_nonlinear (docs/theory.md §2e): the test variances' derivative tensors against central
differences of v_t itself."""
import numpy as np

from msat import generated


def test_the_test_variance_derivative_tensors_are_the_derivatives_of_v():
    """The emitted tensors of v_t = (g_v/chi)(c**_t - g_v Cs_t^T A Cs_t) (two selectors e^T ... e: a diagonal)
    against central differences of v itself, entry by entry, on a random field."""
    rng = np.random.default_rng(0)
    P, Q, chi, g_v, kappa = 3, 2, 2.5, 1.3, 0.4
    R = rng.standard_normal((P, P))
    C, Cs = R @ R.T / P + np.eye(P), rng.standard_normal((P, Q))

    def v(C, Cs):
        A = np.linalg.inv(g_v * C + kappa * np.eye(P))
        return -g_v**2 / chi * np.einsum("pt,pq,qt->t", Cs, A, Cs)  # c**_t enters linearly, slope g_v/chi

    A = np.linalg.inv(g_v * C + kappa * np.eye(P))
    zero = (np.zeros((P, P, P, P)), np.zeros((P, P, P, Q)), np.zeros((P, Q, P, Q)))
    v1c, v1s, v1d, _ = generated.field_loop().test_variance_derivatives(A, Cs, *zero, chi, g_v)
    h = 1e-6
    for i in range(P):
        for j in range(P):
            E = np.zeros((P, P))
            E[i, j] = h
            np.testing.assert_allclose(v1c[:, i, j], (v(C + E, Cs) - v(C - E, Cs)) / (2 * h), atol=1e-8)
        for s in range(Q):
            E = np.zeros((P, Q))
            E[i, s] = h
            np.testing.assert_allclose(v1s[:, i, s], (v(C, Cs + E) - v(C, Cs - E)) / (2 * h), atol=1e-8)
    assert np.isclose(v1d, g_v / chi)
    # the second derivatives, contracted with a random metric on (Cs, Cs), against differences of v1s
    Gss = rng.standard_normal((P, Q, P, Q))
    v2G = generated.field_loop().test_variance_derivatives(A, Cs, zero[0], zero[1], Gss, chi, g_v)[3]
    hess = np.zeros((Q, P, Q, P, Q))
    for k in range(P):
        for s in range(Q):
            E = np.zeros((P, Q))
            E[k, s] = h
            up = generated.field_loop().test_variance_derivatives(A, Cs + E, *zero, chi, g_v)[1]
            dn = generated.field_loop().test_variance_derivatives(A, Cs - E, *zero, chi, g_v)[1]
            hess[:, :, :, k, s] = (up - dn) / (2 * h)
    np.testing.assert_allclose(v2G, np.einsum("tisks,isks->t", hess, Gss), atol=1e-7)
