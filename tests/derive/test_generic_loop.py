"""derive.generic_loop (docs/theory.md §2e): the loop written without the inverse of W'' is the same
expression as the theory's, checked exactly on explicit rational matrices."""
import sympy as sp

from msat.derive import generic_loop as g


def _explicit(rows, cols, seed, symmetric=False):
    rng = sp.Rational
    vals = [[rng((seed * 7 + 3 * i + 5 * j) % 11 - 5, 3 + (i + 2 * j) % 4) for j in range(cols)] for i in range(rows)]
    M = sp.Matrix(vals)
    return (M + M.T) / 2 if symmetric else M


def test_the_resolvent_form_is_the_theory_loop():
    """With B = W''^-1 and G = (N B - L2)^-1 (the theory's propagator), the resolvent H of
    resolvent_operator gives G = H W'' and G B = H, and loop_correction (written with H W'''[Y])
    equals (1/2) tr(m'' G) + (1/2) (G m')^T (B W'''[Y] + ell), exactly, on explicit 3 x 3 matrices with
    a 2-output m'."""
    d, k = 3, 2
    R = _explicit(d, d, 1)
    W2 = R * R.T + sp.eye(d)
    L2 = _explicit(d, d, 2, symmetric=True)
    N = sp.Rational(7, 2)
    m1, m2G = _explicit(d, k, 3), _explicit(k, 1, 4)
    w3, ell = _explicit(d, 1, 5), _explicit(d, 1, 6)
    B = W2.inv()
    G = (N * B - L2).inv()
    sub = {g.W2: W2, g.L2: L2, g.N: N, g.d: d}
    H = g.resolvent_operator().subs(sub).as_explicit().inv()
    assert sp.simplify(G - H * W2) == sp.zeros(d, d)
    assert sp.simplify(G * B - H) == sp.zeros(d, d)
    theory = m2G / 2 + (G * m1).T * (B * w3 + ell) / 2
    ours = g.loop_correction().subs({g.m1: m1, g.m2G: m2G, g.G: G, g.Hw3: H * w3, g.ell: ell, g.d: d, g.k: k})
    assert sp.simplify(ours.as_explicit() - theory) == sp.zeros(k, 1)
