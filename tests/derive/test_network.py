"""The emitted network log posterior and gradient against SymPy's gradient of an explicit
small network (derive.network.log_posterior_explicit)."""
import numpy as np
import pytest
import sympy as sp

from msat.generated import densities
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
