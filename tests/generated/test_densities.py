"""generated/densities.py and generated/nngp.py: the network log posterior and gradient against
SymPy's gradient of an explicit small network (derive.network.log_posterior_explicit), the
single-neuron log density's gradient against finite differences, the prior scales against
quadrature of the log prior, and the NNGP kernels against Monte Carlo over Gaussian
pre-activations."""
import numpy as np
import pytest
import sympy as sp

from msat.generated import densities, nngp as gen_nngp
from msat.derive import network


@pytest.mark.parametrize("act", ["linear", "erf", "relu"])
def test_logp_and_gradient_match_sympy(act):
    rng = np.random.default_rng(3)
    Nn, P, D = 3, 4, 2
    Wv = rng.standard_normal((Nn, D))
    av = rng.standard_normal(Nn)
    Xv = rng.standard_normal((P, D))
    yv = rng.standard_normal(P)
    chi, kappa, g_v, g_w = 2.0, 0.7, 1.3, 0.8
    Ws = sp.Matrix(Nn, D, lambda i, d: sp.Symbol(f"w{i}{d}", real=True))
    as_ = [sp.Symbol(f"a{i}", real=True) for i in range(Nn)]
    params = {network.N: Nn, network.D: D, network.chi: chi, network.kappa: kappa, network.g_v: g_v, network.g_w: g_w}
    lp = network.log_posterior_explicit(act, Ws.tolist(), as_, Xv.tolist(), yv.tolist(), params)
    vals = {Ws[i, d]: Wv[i, d] for i in range(Nn) for d in range(D)}
    vals.update({as_[i]: av[i] for i in range(Nn)})
    ref = float(lp.subs(vals))
    gW, ga = np.empty_like(Wv), np.empty_like(av)
    model = densities
    got = model.network_log_posterior(Wv.copy(), av.copy(), Xv, yv, chi, kappa, g_v, g_w, model.ACTIVATIONS.index(act),
                                      gW, ga, np.empty((Nn, P)), np.empty(P),
            np.ascontiguousarray(Xv.T), np.empty((Nn, P)), np.empty((Nn, P)))
    assert got == pytest.approx(ref, rel=1e-12)
    for i in range(Nn):
        assert ga[i] == pytest.approx(float(sp.diff(lp, as_[i]).subs(vals)), rel=1e-10, abs=1e-12)
        for d in range(D):
            assert gW[i, d] == pytest.approx(float(sp.diff(lp, Ws[i, d]).subs(vals)), rel=1e-10, abs=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("act", ["erf", "relu"])
def test_nngp_kernels_vs_monte_carlo(act):
    rng = np.random.default_rng(0)
    P = 5
    B = rng.standard_normal((P, 3))
    K = B @ B.T / 3 + 0.1 * np.eye(P)
    d = np.ascontiguousarray(np.diag(K))
    out = np.empty_like(K)
    mod = gen_nngp
    mod.nngp_pairs(K, d, d, mod.ACTIVATIONS.index(act), out)
    diag = np.empty(P)
    mod.nngp_diagonal(d, mod.ACTIVATIONS.index(act), diag)
    M = 400_000
    h = rng.standard_normal((M, P)) @ np.linalg.cholesky(K).T
    phi = {"erf": lambda x: __import__("scipy.special", fromlist=["erf"]).erf(x), "relu": lambda x: np.maximum(x, 0)}[act](h)
    mc = phi.T @ phi / M
    se = np.sqrt(np.var(phi[:, :, None] * phi[:, None, :], axis=0) / M)
    assert np.all(np.abs(mc - out) < 5 * se + 1e-12)
    np.testing.assert_allclose(diag, np.diag(out), rtol=1e-12)


def test_relu_kernel_at_degenerate_inputs():
    """The relu NNGP kernel where the angle between inputs is degenerate, against closed forms: an input of
    zero norm has relu(0) = 0, so its row and column vanish (was 0/0: ZeroDivisionError in the kernel); for
    x_b = c x_a, E[relu(h) relu(c h)] = c K_aa / 2 (c > 0) and 0 (c < 0); the diagonal is K_aa / 2."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((6, 4))
    X[1] = 0.0
    X[3], X[4] = 2.5 * X[2], -0.7 * X[2]
    K = X @ X.T / 4
    d = np.ascontiguousarray(np.diag(K))
    out, diag = np.empty_like(K), np.empty(6)
    relu = gen_nngp.ACTIVATIONS.index("relu")
    gen_nngp.nngp_pairs(K, d, d, relu, out)
    gen_nngp.nngp_diagonal(d, relu, diag)
    assert np.all(out[1] == 0.0) and np.all(out[:, 1] == 0.0) and diag[1] == 0.0
    assert out[2, 3] == pytest.approx(2.5 * K[2, 2] / 2, rel=1e-13)
    assert abs(out[2, 4]) < 1e-15 * K[2, 2]
    np.testing.assert_allclose(np.diag(out), d / 2, rtol=1e-14)
    np.testing.assert_allclose(diag, d / 2, rtol=1e-14)


def test_erf_kernel_at_large_inputs_is_the_sign_kernel():
    """At large inputs erf(h) ~ sign(h), whose kernel is (2/pi) asin(K_ab / sqrt(K_aa K_bb)) in closed form; at
    inputs ~ 1e8 round-off put the erf kernel's asin argument past 1 on the diagonal (NaN, and an internal error
    in kernel adaptation): finite now, and within 1e-7 of the sign kernel (whose error is O(1 / K_aa))."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((20, 5)) * 1e8
    K = X @ X.T / 5
    d = np.ascontiguousarray(np.diag(K))
    out = np.empty_like(K)
    gen_nngp.nngp_pairs(K, d, d, gen_nngp.ACTIVATIONS.index("erf"), out)
    sign = 2 / np.pi * np.arcsin(np.clip(K / np.sqrt(np.outer(d, d)), -1, 1))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, sign, rtol=0, atol=1e-7)



def test_erf_kernel_keeps_its_digits_at_large_inputs():
    """The erf kernel (2/pi) asin(2 K_ab / sqrt((1 + 2 K_aa)(1 + 2 K_bb))) against the same formula in 50-digit
    arithmetic (mpmath), from unit inputs to K_aa ~ 1e12: asin lost digits as its argument neared 1 (2e-10
    relative on the diagonal at K_aa ~ 1e12, found against neural-tangents); now every entry and the diagonal
    kernel are within 1e-14, except near-parallel pairs, whose Gram determinant K_aa K_bb - K_ab^2 is itself
    ill-conditioned in float64 (bounded by its round-off)."""
    import mpmath
    mpmath.mp.dps = 50
    rng = np.random.default_rng(3)
    act = gen_nngp.ACTIVATIONS.index("erf")
    for scale in (1.0, 1e3, 1e6):
        X = rng.standard_normal((6, 3)) * scale
        X[5] = X[4] * -2.0  # anti-parallel: the determinant vanishes exactly
        K = X @ X.T / 3
        d = np.ascontiguousarray(np.diag(K))
        out, diag = np.empty_like(K), np.empty_like(d)
        gen_nngp.nngp_pairs(K, d, d, act, out)
        gen_nngp.nngp_diagonal(d, act, diag)
        for a in range(6):
            for b in range(6):
                ka, kb, kab = (mpmath.mpf(float(v)) for v in (K[a, a], K[b, b], K[a, b]))
                ref = 2 / mpmath.pi * mpmath.asin(2 * kab / mpmath.sqrt((1 + 2 * ka) * (1 + 2 * kb)))
                # round-off of the determinant, in units of the angle's cosine side
                det_err = 8 * np.finfo(float).eps * abs(K[a, a] * K[b, b]) / (1 + 2 * K[a, a] + 2 * K[b, b])
                tol = 1e-14 + (det_err if a != b and {a, b} != {4, 5} else 0.0)
                assert abs(out[a, b] - float(ref)) <= tol * abs(float(ref)) + 1e-300, (scale, a, b)
            assert abs(diag[a] - out[a, a]) <= 1e-15 * out[a, a]

@pytest.mark.parametrize("act", ["linear", "erf", "relu"])
def test_log_density_gradient_matches_finite_differences(act):
    mod = densities
    code = mod.ACTIVATIONS.index(act)

    def f(w, X, Ct, D, g_w, *rest):
        return mod.neuron_log_density(w, X, Ct, D, g_w, code, *rest)
    rng = np.random.default_rng(1)
    P, D = 6, 4
    X = rng.standard_normal((P, D))
    Ct = rng.standard_normal((P, P)) * 0.05
    Ct = Ct + Ct.T
    w = rng.standard_normal(D) * 0.5
    bufs = [np.empty(P) for _ in range(4)]
    g = np.empty(D)
    f(w, X, Ct, float(D), 1.0, *bufs, g)
    for d in range(D):
        e = np.zeros(D)
        e[d] = 1e-6
        gp, gm = np.empty(D), np.empty(D)
        fd = (f(w + e, X, Ct, float(D), 1.0, *bufs, gp) - f(w - e, X, Ct, float(D), 1.0, *bufs, gm)) / 2e-6
        assert g[d] == pytest.approx(fd, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("act", ["erf", "relu"])
def test_neuron_scores_are_the_log_density_gradients_by_finite_differences(act):
    """neuron_scores row by row against central differences of neuron_log_density's value."""
    code = densities.ACTIVATIONS.index(act)
    rng = np.random.default_rng(2)
    P, D, n = 5, 4, 3
    X = rng.standard_normal((P, D))
    Ct = rng.standard_normal((P, P)) * 0.05
    Ct = Ct + Ct.T
    W = rng.standard_normal((n, D)) * 0.7
    out = np.empty((n, D))
    densities.neuron_scores(W, X, Ct, float(D), 1.3, code, out)
    bufs = [np.empty(P) for _ in range(4)]
    for i in range(n):
        for d in range(D):
            e = np.zeros(D)
            e[d] = 1e-6
            lp = densities.neuron_log_density(W[i] + e, X, Ct, float(D), 1.3, code, *bufs, np.empty(D))
            lm = densities.neuron_log_density(W[i] - e, X, Ct, float(D), 1.3, code, *bufs, np.empty(D))
            assert out[i, d] == pytest.approx((lp - lm) / 2e-6, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("act", ["linear", "erf", "relu"])
def test_batched_log_densities_equal_the_one_neuron_density(act):
    """neuron_log_densities (matrix products over rows, MALA's lockstep chains) against
    neuron_log_density row by row (scalar loops): values and gradients, for a symmetric Ct (as the
    conjugate field is) and for Ct = 0 (the prior alone)."""
    code = densities.ACTIVATIONS.index(act)
    rng = np.random.default_rng(3)
    P, D, n = 23, 7, 9
    X = rng.standard_normal((P, D))
    S = 0.02 * rng.standard_normal((P, P))
    for Ct in (S + S.T, np.zeros((P, P))):
        W = rng.standard_normal((n, D)) * 0.6
        lq, grad = np.empty(n), np.empty((n, D))
        densities.neuron_log_densities(W, np.ascontiguousarray(X.T), Ct, float(D), 1.3, code, lq, grad)
        bufs = [np.empty(P) for _ in range(4)]
        for i in range(n):
            g = np.empty(D)
            value = densities.neuron_log_density(W[i], X, Ct, float(D), 1.3, code, *bufs, g)
            assert lq[i] == pytest.approx(value, rel=1e-12, abs=1e-12)
            np.testing.assert_allclose(grad[i], g, rtol=1e-11, atol=1e-12)


def test_prior_scales_are_those_of_the_log_priors():
    """Variance and precision of each prior, and the neuron's scales, against quadrature of
    exp(log prior) over one coordinate (derive.network's expressions evaluated by SciPy)."""
    from scipy.integrate import quad

    N, D, chi, g_v, g_w = 7, 5, 3.0, 1.3, 0.8
    for expr, var_index in ((network.prior_hidden().subs(network.ww, sp.Symbol("x") ** 2), 0),
                            (network.prior_readout().subs(network.a_i, sp.Symbol("x")), 1)):
        logp = sp.lambdify(sp.Symbol("x"), expr.subs({network.N: N, network.D: D, network.chi: chi,
                                                      network.g_v: g_v, network.g_w: g_w}))
        Z = quad(lambda x: np.exp(logp(x)), -np.inf, np.inf)[0]
        m2 = quad(lambda x: x * x * np.exp(logp(x)), -np.inf, np.inf)[0] / Z
        var = densities.prior_variances(N, D, chi, g_v, g_w)[var_index]
        prec = densities.prior_precisions(N, D, chi, g_v, g_w)[var_index]
        assert var == pytest.approx(m2, rel=1e-10) and prec == pytest.approx(1 / m2, rel=1e-10)
    var_w, limit, mean_w2 = densities.neuron_scales(D, g_w)
    assert var_w == pytest.approx(g_w / D, rel=1e-14) and mean_w2 == pytest.approx(D * var_w, rel=1e-14)
    # a tilt t |w|^2 keeps exp(log prior + t |w|^2) normalisable exactly while t < limit
    assert limit == pytest.approx(1 / (2 * var_w), rel=1e-14)


def test_network_record_matches_numpy():
    """Outputs, directional moments, feature kernel and its alignment of one network state."""
    rng = np.random.default_rng(4)
    Nn, P, Pt, D = 5, 6, 3, 4
    W, a = rng.standard_normal((Nn, D)), rng.standard_normal(Nn)
    X, Xt, y = rng.standard_normal((P, D)), rng.standard_normal((Pt, D)), rng.standard_normal(P)
    dirs = rng.standard_normal((2, D))
    code = densities.ACTIVATIONS.index("erf")
    out_train, out_test, out_dirs = np.empty(P), np.empty(Pt), np.empty(2)
    ksum, wsum = np.zeros((P, P)), np.zeros((D, D))
    align = densities.network_record(W, a, X, Xt, y, dirs, code, True, out_train, out_test, out_dirs, ksum, wsum,
                                     np.empty((Nn, P)), np.empty((P, P)))
    from scipy.special import erf

    Phi = erf(X @ W.T)
    np.testing.assert_allclose(out_train, Phi @ a, rtol=1e-12)
    np.testing.assert_allclose(out_test, erf(Xt @ W.T) @ a, rtol=1e-12)
    np.testing.assert_allclose(out_dirs, np.mean((W @ dirs.T) ** 2, axis=0), rtol=1e-12)
    C = Phi @ Phi.T / Nn
    np.testing.assert_allclose(ksum, C, rtol=1e-12)
    np.testing.assert_allclose(wsum, W.T @ W / Nn, rtol=1e-12)
    assert align == pytest.approx(y @ C @ y / (y @ y * np.linalg.norm(C)), rel=1e-12)


@pytest.mark.parametrize("act", ["linear", "erf", "relu"])
def test_smoothed_phi_is_the_gaussian_average_of_phi(act):
    """E[phi(m + s xi)], xi ~ N(0, 1) (SymPy's integral, generated) against quadrature; s = 0 is phi."""
    from scipy import integrate, special

    code = densities.ACTIVATIONS.index(act)
    phi = {"linear": lambda h: h, "erf": special.erf, "relu": lambda h: np.maximum(h, 0.0)}[act]
    for m in (-2.3, -0.4, 0.0, 0.7, 3.1):
        assert densities.smoothed_phi(m, 0.0, code) == pytest.approx(float(phi(m)), abs=1e-15)
        for s in (0.05, 0.6, 2.5):
            ref = integrate.quad(lambda x: phi(m + s * x) * np.exp(-x * x / 2) / np.sqrt(2 * np.pi),
                                 -40, 40, points=[-m / s], limit=200, epsabs=1e-13)[0]
            assert densities.smoothed_phi(m, s, code) == pytest.approx(ref, rel=1e-10, abs=1e-12), (m, s)
    H = np.array([[0.3, -1.2], [2.0, 0.1]])
    s = np.array([0.5, 0.0])
    out = np.empty_like(H)
    densities.smoothed_features(H, s, code, out)
    assert out[1, 0] == pytest.approx(densities.smoothed_phi(2.0, 0.5, code)) and out[0, 1] == phi(-1.2)


@pytest.mark.parametrize("act", ["linear", "erf", "relu"])
def test_features_are_phi_of_the_preactivations_across_blocks(act):
    """features computes X w block by block (one matrix product per FEATURE_BLOCK rows): against phi of
    the preactivations summed one by one (math.fsum), over a block boundary and a non-contiguous W."""
    import math

    from scipy import special

    code = densities.ACTIVATIONS.index(act)
    phi = {"linear": lambda h: h, "erf": special.erf, "relu": lambda h: np.maximum(h, 0.0)}[act]
    rng = np.random.default_rng(4)
    X = rng.standard_normal((7, 5))
    W = np.asfortranarray(rng.standard_normal((densities.FEATURE_BLOCK + 3, 5)) / math.sqrt(5))
    out = np.empty((W.shape[0], X.shape[0]))
    densities.features(X, W, code, out)
    H = np.array([[math.fsum(X[a] * W[i]) for a in range(X.shape[0])] for i in range(W.shape[0])])
    np.testing.assert_allclose(out, phi(H), rtol=1e-13, atol=1e-14)


def test_ray_tail_width_is_the_relu_neuron_laws_radial_width_by_quadrature():
    """ray_tail_width(r): the RMS of t under q(t v) over t >= 0 (the relu neuron's generated log density along a
    ray whose tilt is r of the prior's), over the prior's, by quadrature; r read off the same density."""
    from scipy.integrate import quad

    rng = np.random.default_rng(7)
    P, D, g_w = 4, 3, 0.8
    X = rng.standard_normal((P, D))
    v = rng.standard_normal(D)
    v /= np.linalg.norm(v)
    u = np.maximum(X @ v, 0.0)
    act = densities.ACTIVATIONS.index("relu")
    limit = densities.neuron_scales(D, g_w)[1]
    bufs = [np.empty(P) for _ in range(4)] + [np.empty(D)]
    for target in (0.3, 0.9, 0.99):
        Ct = target * limit * np.outer(u, u) / (u @ u) ** 2  # phi(Xv)^T Ct phi(Xv) = target * limit
        log_q = lambda t, C: densities.neuron_log_density(t * v, X, C, D, g_w, act, *bufs)  # noqa: E731
        r = (log_q(1.0, Ct) - log_q(1.0, 0 * Ct)) / limit
        m2 = [quad(lambda t: t * t * np.exp(log_q(t, C)), 0, np.inf)[0] / quad(lambda t: np.exp(log_q(t, C)), 0,
                                                                                np.inf)[0] for C in (Ct, 0 * Ct)]
        assert r == pytest.approx(target, rel=1e-12)
        assert densities.ray_tail_width(r) == pytest.approx(np.sqrt(m2[0] / m2[1]), rel=1e-8)


def test_ray_radius_law_is_the_relu_neuron_laws_radius_along_a_ray_by_quadrature():
    """ray_radius_law(d, a): the Gamma law of r^2 under q(r v) r^(d-1) over r >= 0 (the relu neuron's generated log
    density along a ray, with the polar Jacobian), a = log q(0) - log q(v): its first two moments of r^2 against
    quadrature, at tilt/prior 0.3, 0.9 and 0.99, in d = 2, 3 and 7."""
    from scipy.integrate import quad

    rng = np.random.default_rng(8)
    act = densities.ACTIVATIONS.index("relu")
    for D in (2, 3, 7):
        P, g_w = 4, 0.8
        X = rng.standard_normal((P, D))
        v = rng.standard_normal(D)
        v /= np.linalg.norm(v)
        u = np.maximum(X @ v, 0.0)
        limit = densities.neuron_scales(D, g_w)[1]
        bufs = [np.empty(P) for _ in range(4)] + [np.empty(D)]
        for target in (0.3, 0.9, 0.99):
            Ct = target * limit * np.outer(u, u) / (u @ u) ** 2
            log_q = lambda t: densities.neuron_log_density(t * v, X, Ct, D, g_w, act, *bufs)  # noqa: E731
            a = log_q(0.0) - log_q(1.0)
            shape, scale = densities.ray_radius_law(float(D), a)
            m = [quad(lambda r: r ** k * r ** (D - 1) * np.exp(log_q(r)), 0, np.inf)[0] for k in (0, 2, 4)]
            assert m[1] / m[0] == pytest.approx(shape * scale, rel=1e-8), (D, target)
            assert m[2] / m[0] == pytest.approx(shape * (shape + 1) * scale ** 2, rel=1e-8), (D, target)
