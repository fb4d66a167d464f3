"""derive.deep_chain (docs/theory.md §2d): the closed forms of one layer of the linear chain against
SymPy derivatives of the explicit log-determinant W(T; Sigma) = -(1/2) logdet(I - 2 Sigma T), and the
test forms against the conditional law of a Gaussian tilted on its train block (NumPy, 3 + 2 points),
the tangent maps (the chain's Jacobians) against central differences of the maps."""
import numpy as np
import pytest
import sympy as sp

from msat import generated
from msat.derive import deep_chain

G = generated.deep_linear_adaptation()


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


def _grid_law(Sigma, Ct, act, n=601, span=8.0):
    """Nodes h = L z of a uniform z-grid and the normalised weights of q(h) ∝ N(h; 0, Sigma) e^{G(h)}."""
    from scipy.special import erf

    phi = {"linear": lambda h: h, "erf": erf, "relu": lambda h: np.maximum(h, 0.0)}[act]
    dphi = {"linear": np.ones_like, "erf": lambda h: 2 / np.sqrt(np.pi) * np.exp(-h * h),
            "relu": lambda h: (h > 0).astype(float)}[act]
    z = np.linspace(-span, span, n)
    Z = np.stack(np.meshgrid(z, z, indexing="ij"), -1).reshape(-1, 2)
    H = Z @ np.linalg.cholesky(Sigma).T
    F = phi(H)
    logw = -0.5 * np.sum(Z * Z, axis=1) + np.einsum("ia,ab,ib->i", F, Ct, F)
    return H, F, dphi(H), logw


def _log_partition(Sigma, Ct, act, n):
    _, _, _, logw = _grid_law(Sigma, Ct, act, n)
    top = logw.max()
    return top + np.log(np.sum(np.exp(logw - top)))  # up to the Sigma-independent grid constant


def test_stein_backward_is_the_derivative_of_the_log_partition():
    """dW/dSigma by finite differences of W(Sigma) = ln E exp(phi^T Ct phi) on a 2-D grid against the
    Stein form over the same grid's weights, erf and ReLU (where Price's form without phi'' fails)."""
    mod = generated.deep_linear_adaptation()
    Sigma = np.array([[1.0, 0.4], [0.4, 0.8]])
    Ct = np.array([[0.15, -0.05], [-0.05, 0.1]])
    # the grid's error is spectral for smooth phi and O(1/n) across ReLU's kink (3e-4 at n = 1201)
    for act, n, rtol in (("linear", 301, 1e-8), ("erf", 301, 1e-7), ("relu", 1201, 1e-3)):
        H, F, dF, logw = _grid_law(Sigma, Ct, act, n)
        w = np.exp(logw - logw.max())
        w /= w.sum()
        Zp = H @ np.linalg.inv(Sigma)  # Sigma^+ h (Sigma invertible in this check)
        stein = mod.stein_backward(Zp, F, dF, Ct, w[:, None], 1.0, 1.0, 1.0)
        fd = np.empty((2, 2))
        eps = 1e-5
        for i in range(2):
            for j in range(2):
                E = np.zeros((2, 2))
                E[i, j] = E[j, i] = eps
                d = (_log_partition(Sigma + E, Ct, act, n) - _log_partition(Sigma - E, Ct, act, n)) / (2 * eps)
                fd[i, j] = d if i == j else d / 2  # a symmetric perturbation moves two entries
        np.testing.assert_allclose(stein, fd, rtol=rtol, atol=rtol * np.abs(fd).max(), err_msg=act)
        # the score form (no phi'): untilted weights of the same grid nodes
        w0 = np.exp(-0.5 * np.sum((H @ np.linalg.inv(np.linalg.cholesky(Sigma)).T) ** 2, axis=1))
        score = mod.score_backward(Zp, w[:, None], (w0 / w0.sum())[:, None], 1.0, 1.0, 1.0)
        np.testing.assert_allclose(score, fd, rtol=rtol, atol=rtol * np.abs(fd).max(), err_msg=act + " score")
        if act == "linear":  # the closed form of the linear chain
            np.testing.assert_allclose(stein, mod.layer_backward(Sigma, Ct, 1.0, 1.0, 1.0), rtol=1e-6)


def test_importance_log_weights_are_gaussian_log_densities_and_the_tilt():
    """proposal_log_ratio = ln N(z; 0, I) - ln N(z; 0, R R^T) + ln det R (scipy), tilt = phi^T Ct phi."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(2)
    R = np.tril(rng.uniform(0.5, 1.5, (3, 3)))
    U = rng.standard_normal((5, 3))
    Z = U @ R.T
    mod = generated.deep_linear_adaptation()
    ref = (multivariate_normal(np.zeros(3), np.eye(3)).logpdf(Z) - multivariate_normal(np.zeros(3), R @ R.T).logpdf(Z)
           - np.log(np.abs(np.linalg.det(R))))
    np.testing.assert_allclose(mod.proposal_log_ratio(Z, U)[:, 0], ref, rtol=1e-12, atol=1e-12)
    Ct = rng.standard_normal((3, 3))
    np.testing.assert_allclose(mod.tilt(U, Ct)[:, 0], [u @ Ct @ u for u in U], rtol=1e-12)


@pytest.mark.parametrize("act", ["erf", "relu"])
def test_tilt_gradient_is_the_derivative_of_the_tilt(act):
    """tilt_gradient (rows 2 phi'(h) o (Ct phi(h))) against central differences of tilt(phi(h)) in each h."""
    from msat.generated import densities

    rng = np.random.default_rng(5)
    H = rng.standard_normal((4, 6)) + 0.3  # away from relu's kink by more than the step
    Ct = _sym(rng, 6)
    code, mod = densities.ACTIVATIONS.index(act), generated.deep_linear_adaptation()
    Phi, dPhi = np.empty_like(H), np.empty_like(H)
    densities.features_and_slopes(H, code, Phi, dPhi)
    got, step, fd = mod.tilt_gradient(Phi, dPhi, Ct), 1e-6, np.empty_like(H)
    for j in range(H.shape[1]):
        shifted = []
        for sign in (1, -1):
            Hs = H.copy()
            Hs[:, j] += sign * step
            densities.features_and_slopes(Hs, code, Phi, dPhi)
            shifted.append(mod.tilt(Phi.copy(), Ct)[:, 0])
        fd[:, j] = (shifted[0] - shifted[1]) / (2 * step)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("d", [4, 9])
def test_linearised_precision_is_the_linear_units_tilted_law(d):
    """linearised_precision: Lambda is minus the Hessian (SymPy) of ln[N(z; 0, I) e^{var_w (Xb z)^T Ct (Xb z)}],
    and the preactivations Xb w of N(0, var_w Lambda^-1) have the linear layer's adapted kernel
    (I - 2 Sigma Ct)^-1 Sigma, Sigma = var_w Xb Xb^T (push-through; fewer weights than points or more)."""
    rng = np.random.default_rng(11)
    n, var_w = 6, 0.7
    Xb = rng.standard_normal((n, d)) / np.sqrt(d)
    Ct = _sym(rng, n, 0.2)
    mod = generated.deep_linear_adaptation()
    Lam = mod.linearised_precision(Xb, Ct, var_w)
    z = sp.Matrix(sp.symbols(f"z0:{d}", real=True))
    h = sp.Matrix(Xb) * z
    log_q = -(z.T * z)[0] / 2 + var_w * (h.T * sp.Matrix(Ct) * h)[0]
    hess = np.array(sp.hessian(log_q, list(z)), dtype=float)
    np.testing.assert_allclose(Lam, -hess, rtol=1e-12, atol=1e-12)
    Sigma = var_w * Xb @ Xb.T
    np.testing.assert_allclose(var_w * Xb @ np.linalg.solve(Lam, Xb.T), mod.layer_kernel(Sigma, Ct),
                               rtol=1e-10, atol=1e-12)


def _sym(rng, n, scale=1.0):
    M = rng.standard_normal((n, n))
    return scale * (M + M.T) / 2


def test_tangent_maps_are_the_derivatives_of_the_layer_maps():
    """The generated Jacobians (matcalc's solve rule applied to the forward, backward, fit and top
    maps) against central differences of the generated maps themselves."""
    rng = np.random.default_rng(3)
    n, h = 5, 1e-6
    B = rng.standard_normal((n, n))
    Sigma = B @ B.T / n + 0.1 * np.eye(n)
    T, dSigma, dT = _sym(rng, n, 0.05), _sym(rng, n), _sym(rng, n)

    def fd(f):
        return (f(h) - f(-h)) / (2 * h)

    rel = lambda a, b: np.abs(a - b).max() / np.abs(b).max()  # noqa: E731
    dC = G.layer_kernel_tangent(Sigma, T, dSigma, dT)
    assert rel(dC, fd(lambda e: G.layer_kernel(Sigma + e * dSigma, T + e * dT))) < 1e-8
    dCt = G.layer_backward_tangent(Sigma, T, dSigma, dT, 1.3, 40.0, 30.0)
    assert rel(dCt, fd(lambda e: G.layer_backward(Sigma + e * dSigma, T + e * dT, 1.3, 40.0, 30.0))) < 1e-8
    # the fit operator's inverse and alpha = A y, then the top field of orders 0 and 1
    C, dC2, y = Sigma, _sym(rng, n), rng.standard_normal((n, 1))
    kappa, g_v, N, chi = 0.3, 1.2, 50.0, 7.0
    A_of = lambda e: np.linalg.inv(g_v * (C + e * dC2) + kappa * np.eye(n))  # noqa: E731
    A = A_of(0.0)
    dA, dalpha = G.fit_tangent(A, y, dC2, g_v)
    assert rel(dA, fd(A_of)) < 1e-8
    assert rel(dalpha, fd(lambda e: A_of(e) @ y)) < 1e-8
    for order in (0, 1):
        top = getattr(generated.linear_adaptation(), f"conjugate_field_o{order}")
        tangent = getattr(G, f"top_field_tangent_o{order}")
        want = fd(lambda e: top(A_of(e), A_of(e) @ y, N, chi, g_v))
        assert rel(tangent(A, A @ y, dA, dalpha, N, chi, g_v), want) < 1e-7
