"""derive.gaussian against a dense reference: the Gaussian over the n(n+1)/2 free coordinates of a
symmetric X with density exp(-(1/2) H[X, X]), H[X, X] = sum_ij lam_ij X_ij^2 + k (Xb)^T diag(mu) (Xb),
built as an explicit precision matrix and inverted with NumPy; its covariance against the
Hadamard pattern Lh_ij (d_ik d_jl + d_il d_jk), and E[X W X] against the emitted moment."""
import itertools

import numpy as np
import pytest

from msat import generated

gen = generated.wishart_field()
n = 3
COORDS = [(i, j) for i in range(n) for j in range(i, n)]


def _mat(v):
    X = np.zeros((n, n))
    for (i, j), x in zip(COORDS, v):
        X[i, j] = X[j, i] = x
    return X


def _dense(lam, b, mu, k):
    """Covariance of the free coordinates: H is quadratic, so its precision is the Hessian of H/2."""
    m = len(COORDS)
    basis = [_mat(e) for e in np.eye(m)]

    def H(X, Y):
        return np.sum(lam * X * Y) + k * (X @ b) @ (mu * (Y @ b))

    Pi = np.array([[H(A, B) for B in basis] for A in basis])
    return np.linalg.inv(Pi), basis


@pytest.mark.parametrize("k", [0.0, 0.8])
def test_covariance_and_moment_equal_the_dense_gaussian(k):
    rng = np.random.default_rng(int(10 * k))
    L = rng.uniform(1.0, 2.0, (n, n))
    lam = (L + L.T) / 2
    b, mu = rng.standard_normal(n), rng.uniform(0.1, 1.0, n)
    cov, basis = _dense(lam, b, mu, k)
    Lh, Li = gen.hadamard_inverses(lam)
    if k == 0.0:
        for (p, (i, j)), (q, (kk, ll)) in itertools.product(enumerate(COORDS), repeat=2):
            pattern = Lh[i, j] * ((i == kk) * (j == ll) + (i == ll) * (j == kk))
            assert cov[p, q] == pytest.approx(pattern, abs=1e-14)
    S, rhs = gen.woodbury_system(Lh, b, mu, k)
    R = np.linalg.solve(S, rhs)
    W = rng.standard_normal((n, n))
    # E[X W X] = sum_pq cov_pq B_p W B_q with X = sum_p x_p B_p
    ref = sum(cov[p, q] * basis[p] @ W @ basis[q] for p in range(len(COORDS)) for q in range(len(COORDS)))
    np.testing.assert_allclose(gen.gaussian_moment(W, Lh, b, R), ref, atol=1e-13)
    # and the Hessian solve: H[Z] = Rhs for symmetric Z, as the dense operator says
    Rhs = W + W.T
    Sh, rh = gen.hessian_system(Rhs, Li, b, mu, k / 2)
    Z = gen.hessian_field(Rhs, Li, b, np.linalg.solve(Sh, rh), k / 2)
    HZ = lam * Z + (k / 2) * (np.outer(b, mu * (Z @ b)) + np.outer(mu * (Z @ b), b))
    np.testing.assert_allclose(HZ, Rhs, atol=1e-12)
