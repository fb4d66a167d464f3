"""derive.indices (index notation -> NumPy) against brute force: every formula emitted through it,
raw (before delta elimination and merging) evaluated term by term with numpy.einsum over all its
indices (deltas as identity matrices), equals the printed pairwise code run on random arrays."""
import numpy as np
import pytest
import sympy as sp

from msat.derive import adaptation_basis, activations, gaussian, indices
from msat.derive.emit import code

n = 5
RNG = np.random.default_rng(11)
ARRAYS = {name: RNG.standard_normal((n, n)) for name in ("W", "Lh", "Li", "R", "Rhs", "Phi", "B", "E", "Ct", "X")}
ARRAYS.update({name: RNG.standard_normal(n) for name in ("b", "mu", "w", "a", "y", "f", "inv_lam", "sqrt_lam",
                                                          "dq", "kss")})
ARRAYS.update(khat=RNG.standard_normal((n, 3)), kss=RNG.standard_normal(3), F=RNG.standard_normal((7, n)),
              Ft=RNG.standard_normal((7, 3)), X_test=RNG.standard_normal((3, n)), dq7=RNG.standard_normal(7))
SCALARS = {"k": 0.7, "h": 0.35, "sigma": 0.4, "M": 7, "g_w": 1.3, "D": 4.0, "n": n}


def brute_force(terms, free, arrays):
    total = 0.0
    for t in terms:
        letters = {}
        for i in list(free) + [i for _, idx in t.factors for i in idx] + [i for p in t.deltas for i in p]:
            letters.setdefault(i, "abcdefghijklmnopqrstuvwxyz"[len(letters)])
        ops = [arrays[name] for name, _ in t.factors] + [np.eye(n)] * len(t.deltas)
        subs = ",".join("".join(letters[i] for i in idx) for idx in [idx for _, idx in t.factors] + list(t.deltas))
        c = sp.sympify(t.coeff)
        coeff = float(c.subs({s: SCALARS[s.name] for s in c.free_symbols}))
        total = total + coeff * np.einsum(f"{subs}->{''.join(letters[i] for i in free)}", *ops)
    return total


def printed(terms, free, arrays):
    ns = {"numpy": np, **arrays, **SCALARS}
    exec("\n".join(indices.numpy_lines({"out": (terms, free)}, {k: k for k in arrays}, code)), ns)
    return ns["out"]


def _cases():
    j, q = indices.dummy(), indices.dummy()
    raw_moment = indices.mul(indices.A("W", j, q), gaussian.cov("i", j, q, "l"))
    S_w, rhs_w = gaussian.woodbury_system()
    S_h, rhs_h, Z = gaussian.hessian_system()
    Cs, css = adaptation_basis.test_forms()
    M, v = adaptation_basis.weight_forms()
    K, ks, kss = activations.input_kernels()
    return {
        "moment raw": (raw_moment, ("i", "l"), {}),
        "moment": (gaussian.moment(), ("i", "l"), {}),
        "woodbury S": (S_w, ("p", "q"), {}),
        "hessian S": (S_h, ("i", "q"), {}),
        "hessian rhs": (rhs_h, ("i",), {}),
        "hessian Z": (Z, ("i", "j"), {}),
        "newton matrix": (adaptation_basis.newton_matrix(), ("i", "q"), {}),
        "test cross": (Cs, ("i", "t"), {}),
        "test diagonal": (css, ("t",), {}),
        "weight precision": (M, ("i", "j"), {}),
        "row quadratic": (indices.mul(indices.A("F", "m", "a"), indices.A("Ct", "a", "b"), indices.A("F", "m", "b")),
                          ("m",), {"F": ARRAYS["F"]}),
        "input kernel": (K, ("a", "b"), {"X": ARRAYS["X"]}),
        "cross kernel": (ks, ("a", "t"), {"X": ARRAYS["X"], "X_test": ARRAYS["X_test"]}),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_printed_code_equals_brute_force(name):
    terms, free, override = _cases()[name]
    arrays = {**ARRAYS, **override}
    simplified = indices.simplify(terms, free)
    np.testing.assert_allclose(printed(simplified, free, arrays), brute_force(terms, free, arrays),
                               rtol=1e-12, atol=1e-12)


def test_deltas_are_eliminated_and_equal_terms_merged():
    i, j = "i", "j"
    s = indices.dummy()
    # sum_s A_is delta_sj + A_ij = 2 A_ij
    expr = indices.add(indices.mul(indices.A("A", i, s), indices.delta(s, j)), indices.A("A", i, j))
    out = indices.simplify(expr, (i, j))
    assert len(out) == 1 and out[0].coeff == 2 and not out[0].deltas
    # sum_s delta_ss = n, and a delta between free indices stays
    assert indices.simplify(indices.delta(s, s), ())[0].coeff == sp.Symbol("n")
    assert indices.simplify(indices.delta(i, j), (i, j))[0].deltas == ((i, j),)
