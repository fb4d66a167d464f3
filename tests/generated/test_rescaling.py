"""Generated kernels against the SymPy expressions they came from, evaluated independently.

The reference interprets each kernel specification (derive.kernels) statement by statement with
sympy.lambdify(..., "mpmath") at 30 digits: no cse, no printer, no template, no numba. The
generated kernels must agree to ~1e-12 relative. A subprocess runs the same kernels with
NUMBA_DISABLE_JIT=1 (pure Python) and must agree with the compiled ones.
"""
import json
import os
import re
import subprocess
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp

from msat import generated
from msat.derive.kernels import rescaling as kernels

RNG = np.random.default_rng(7)


def _inputs(order, J=3, K=5):
    rng = np.random.default_rng(100 + order)
    return {
        "s_nodes": rng.uniform(0.3, 3.0, J),
        "chi_nodes": rng.uniform(1.0, 50.0, J),
        "lam_modes": np.concatenate([[0.0], rng.uniform(0.01, 5.0, K - 1)]),
        "yt2_modes": rng.uniform(0.0, 2.0, K),
        "mult_modes": rng.integers(1, 4, K).astype(float),
        "N": 37.0,
        "kappa": 0.4,
        "g_v": 1.3,
    }


def _reference_spectral(spec, inp, shapes):
    """Interpret a spectral KernelSpec with mpmath."""
    mpmath.mp.dps = 30
    out = {name: np.zeros(shape, dtype=object) for name, shape in shapes.items()}
    J = len(inp["s_nodes"])
    for j in range(J):
        env = {"s": inp["s_nodes"][j], "chi": inp["chi_nodes"][j], "N": inp["N"],
               "kappa": inp["kappa"], "g_v": inp["g_v"]}
        for st, loop in [(st, False) for st in spec.node] + [(st, True) for st in spec.mode]:
            name, idx = re.match(r"(\w+)\[(.*)\]", st.target).groups()
            ks = range(len(inp["lam_modes"])) if loop else [None]
            for k in ks:
                local = dict(env)
                if k is not None:
                    local["lam"] = inp["lam_modes"][k]
                    local["yt2_modes_k"] = inp["yt2_modes"][k]
                    local["mult_modes_k"] = inp["mult_modes"][k]
                syms = sorted(sp.sympify(st.expr).free_symbols, key=str)
                f = sp.lambdify(syms, st.expr, "mpmath")
                val = f(*[mpmath.mpf(float(local[str(x)])) for x in syms])
                index = tuple(int(v) if v.strip().isdigit() else (j if v.strip() == "j" else k)
                              for v in idx.split(","))
                if st.op == "+=":
                    out[name][index] += val
                else:
                    out[name][index] = val
    return {k: v.astype(float) for k, v in out.items()}


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_action_derivatives_vs_mpmath(order):
    inp = _inputs(order)
    mod = generated.rescaling(order)
    J, n = len(inp["s_nodes"]), 2 * order + 3
    dS0, dS1 = np.empty((J, n)), np.empty((J, n))
    mod.action_derivatives(inp["s_nodes"], inp["chi_nodes"], inp["N"], inp["kappa"], inp["g_v"],
                           inp["lam_modes"], inp["yt2_modes"], inp["mult_modes"], dS0, dS1)
    ref = _reference_spectral(kernels.action_derivatives_spec(order), inp, {"dS0": (J, n), "dS1": (J, n)})
    np.testing.assert_allclose(dS0, ref["dS0"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dS1, ref["dS1"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("order", [0, 2, 3])
def test_observable_tables_vs_mpmath(order):
    inp = _inputs(order)
    mod = generated.rescaling(order)
    J, n, K = len(inp["s_nodes"]), 2 * order + 1, len(inp["lam_modes"])
    arrs = {"train_mean_modes": np.empty((J, n, K)), "test_mean_modes": np.empty((J, n, K)),
            "test_var_modes": np.empty((J, n, K)), "test_var_scalar": np.empty((J, n)),
            "field_s_scalar": np.empty((J, n)), "resolvent_modes": np.empty((J, n, K))}
    mod.observable_tables(inp["s_nodes"], inp["chi_nodes"], inp["kappa"], inp["g_v"], inp["lam_modes"], *arrs.values())
    ref = _reference_spectral(kernels.observable_tables_spec(order), inp, {k: v.shape for k, v in arrs.items()})
    for k in arrs:
        np.testing.assert_allclose(arrs[k], ref[k], rtol=1e-12, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("dressed", [False, True])
def test_weights_vs_mpmath(order, dressed):
    spec = kernels.weights_spec(order, dressed)
    rng = np.random.default_rng(order)
    J, nA = 4, 2 * order + 3
    dA = rng.uniform(-3, 3, (J, nA))
    dA[:, 2] = rng.uniform(5, 50, J)  # curvature > 0 at a minimum
    dB = rng.uniform(-3, 3, (J, nA))
    w = np.empty((J, order + 1, 2 * order + 1))
    mod = generated.rescaling(order)
    if dressed:
        mod.weights_dressed(dA, w)
    else:
        mod.weights_bare(dA, dB, w)
    mpmath.mp.dps = 30
    for j in range(J):
        env = {f"A_{n}": dA[j, n] for n in range(nA)}
        env.update({f"B_{n}": dB[j, n] for n in range(nA)})
        for st in spec.node:
            l, n = (int(v) for v in st.target[st.target.index(",") + 1:-1].split(","))
            syms = sorted(sp.sympify(st.expr).free_symbols, key=str)
            val = sp.lambdify(syms, st.expr, "mpmath")(*[mpmath.mpf(float(env[str(x)])) for x in syms])
            assert abs(w[j, l, n] - float(val)) <= 1e-12 * max(1.0, abs(float(val)))


def test_square_derivatives_is_the_leibniz_rule_of_a_known_function():
    mod = generated.rescaling(3)
    s = 0.7
    f = [np.sin(s + np.pi * k / 2) for k in range(7)]  # derivatives of sin
    g = [-np.cos(2 * s + np.pi * k / 2) * 2 ** k / 2 for k in range(7)]  # of sin^2 = (1 - cos 2s)/2
    g[0] = np.sin(s) ** 2
    M = np.array(f)[:, None].copy()
    out = np.empty_like(M)
    mod.square_derivatives(M, out)
    np.testing.assert_allclose(out[:, 0], g, rtol=1e-13, atol=1e-13)


def test_action_difference_vs_direct_difference():
    """S(s0 e^t) - S(s0) from the exact-integrand kernel vs mpmath on S itself."""
    inp = _inputs(0, K=6)
    t = np.array([-0.3, -1e-9, 0.0, 2e-7, 0.5])
    out = np.empty_like(t)
    s0, chi = 1.7, 9.0
    generated.exact().action_difference(t, s0, chi, inp["N"], inp["kappa"], inp["g_v"], inp["lam_modes"], inp["yt2_modes"], inp["mult_modes"], out)
    mpmath.mp.dps = 40
    lam = [mpmath.mpf(float(v)) for v in inp["lam_modes"]]
    yt2 = [mpmath.mpf(float(v)) for v in inp["yt2_modes"]]
    mult = [int(v) for v in inp["mult_modes"]]  # a mode of multiplicity m is m equal modes
    lam = [v for v, m in zip(lam, mult) for _ in range(m)]
    yt2 = [v for v, m in zip(yt2, mult) for _ in range(m)]
    N, kappa, g_v = (mpmath.mpf(inp[k]) for k in ("N", "kappa", "g_v"))

    def S(s):
        d = [g_v * s * l + kappa for l in lam]
        return N * (s - mpmath.log(s)) / 2 + chi * sum(a / b for a, b in zip(yt2, d)) / 2 + sum(mpmath.log(b) for b in d) / 2 + mpmath.log(s)

    for ti, oi in zip(t, out):
        ref = S(mpmath.mpf(s0) * mpmath.exp(mpmath.mpf(float(ti)))) - S(mpmath.mpf(s0))
        assert abs(oi - float(ref)) <= 1e-14 * max(1.0, abs(float(ref)))


_SCRIPT = r"""
import json, sys, numpy as np
from msat import generated
order = int(sys.argv[1])
mod = generated.rescaling(order)
rng = np.random.default_rng(5)
J, K = 3, 6
s = rng.uniform(0.5, 2, J); chi = rng.uniform(1, 20, J); lam = rng.uniform(0, 3, K); yt2 = rng.uniform(0, 1, K)
n = 2 * order + 3
dS0 = np.empty((J, n)); dS1 = np.empty((J, n))
mod.action_derivatives(s, chi, 30.0, 0.5, 1.0, lam, yt2, np.ones(K), dS0, dS1)
w = np.empty((J, order + 1, 2 * order + 1)); mod.weights_bare(dS0, dS1, w)
m = 2 * order + 1
tabs = [np.empty((J, m, K)) for _ in range(3)] + [np.empty((J, m)) for _ in range(2)] + [np.empty((J, m, K))]
mod.observable_tables(s, chi, 0.5, 1.0, lam, *tabs)
print(json.dumps([a.tolist() for a in [dS0, dS1, w] + tabs]))
"""


@pytest.mark.parametrize("order", [1, 3])
def test_compiled_equals_pure_python(order):
    def run(env_extra):
        env = dict(os.environ, **env_extra)
        res = subprocess.run([sys.executable, "-c", _SCRIPT, str(order)], capture_output=True, text=True, env=env, check=True)
        return [np.array(a) for a in json.loads(res.stdout)]

    jit = run({})
    nojit = run({"NUMBA_DISABLE_JIT": "1"})
    for a, b in zip(jit, nojit):
        # integer powers are evaluated by LLVM (compiled) or CPython (pure); both round differently
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("order", [1, 3])
def test_a_mode_of_multiplicity_m_is_m_equal_modes(order):
    """The thin spectrum's aggregated zero mode (docs/theory.md §2a): every accumulated spectral sum
    with multiplicities equals the same sum over the modes repeated."""
    inp = _inputs(order, K=4)
    mod = generated.rescaling(order)
    J, n = len(inp["s_nodes"]), 2 * order + 3
    mult = np.array([3.0, 1.0, 2.0, 5.0])
    rep = lambda a: np.repeat(a, mult.astype(int))  # noqa: E731
    outs = []
    for lam, yt2, m in ((inp["lam_modes"], inp["yt2_modes"], mult),
                        (rep(inp["lam_modes"]), rep(inp["yt2_modes"]), np.ones(int(mult.sum())))):
        dS0, dS1 = np.empty((J, n)), np.empty((J, n))
        mod.action_derivatives(inp["s_nodes"], inp["chi_nodes"], inp["N"], inp["kappa"], inp["g_v"], lam, yt2, m,
                               dS0, dS1)
        diff = np.empty(3)
        generated.exact().action_difference(np.array([-0.2, 0.0, 0.3]), 1.3, 7.0, inp["N"], inp["kappa"], inp["g_v"],
                                            lam, yt2, m, diff)
        outs.append((dS0, dS1, diff))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
