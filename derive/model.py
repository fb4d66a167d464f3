"""The kernel-rescaling action S(s) of a Bayesian two-layer linear network (docs/theory.md §2a).

Every term is written per eigenmode of K (K = U diag(lam) U^T, yt = U^T y), so that S(s) and each
of its s-derivatives is a scalar part plus a spectral sum  sum_k weight_k * summand(s, lam_k).
Terms carry their scale class (docs/theory.md §3): prior (scale N) and fit (scale chi) count at 1/hbar,
output fluctuations and the measure at hbar^0.

Observables (docs/theory.md §2a, §4) follow the same pattern: a summand in (s, lam) that runtime contracts
with a coefficient matrix built from the eigenvectors (linear-algebra plumbing only).
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

# Field and parameters. All positive, which lets SymPy simplify logs and powers safely.
s = sp.Symbol("s", positive=True)
lam = sp.Symbol("lam", nonnegative=True)  # eigenvalue of K (zero when P > D)
N = sp.Symbol("N", positive=True)
chi = sp.Symbol("chi", positive=True)
kappa = sp.Symbol("kappa", positive=True)
g_v = sp.Symbol("g_v", positive=True)
#: Expansion point s0 and log-offset t = ln(s / s0) used by the exact integral.
s0 = sp.Symbol("s0", positive=True)
t = sp.Symbol("t", real=True)

PARAMS = (N, chi, kappa, g_v)

#: scale classes: which power of 1/hbar a term carries in the loop counting of docs/theory.md §3
HBAR_INVERSE = ("prior", "fit")
HBAR_ZERO = ("fluctuation", "measure")


@dataclass(frozen=True)
class Term:
    """One term of an action.

    ``weight`` is None for a scalar term (expr depends on s only); otherwise the term is the
    spectral sum sum_k weight_k * expr(s, lam_k) with ``weight`` naming the per-mode array
    ("yt2" = (U^T y)_k^2, "one" = 1).
    """

    name: str
    klass: str
    scale: str
    expr: sp.Expr
    weight: str | None


#: per-mode arrays of a spectral kernel: eigenvalue, (U^T y)_k^2 and multiplicity. A thin spectrum
#: (docs/theory.md §2a) holds K's P - r zero modes as one mode of multiplicity P - r whose yt2 is
#: |y_null|^2 / (P - r), so every spectral sum is sum_k mult_k * summand_k.
MODE_ARGS = ["lam_modes", "yt2_modes", "mult_modes"]
MODE_LOCALS = ["yt2_modes_k", "mult_modes_k"]


def mode_factor(weight: str) -> sp.Expr:
    """The factor of a spectral term's summand: the mode's multiplicity times 1 ("one") or its yt2."""
    mult = sp.Symbol("mult_modes_k")
    return mult if weight == "one" else mult * sp.Symbol(f"{weight}_modes_k")


def action() -> tuple[Term, ...]:
    """S(s) of docs/theory.md §2a, term by term with scale classes."""
    d = g_v * s * lam + kappa  # eigenvalue of g_v s K + kappa
    return (
        Term("prior", "prior", "N", N * (s - sp.log(s)) / 2, None),
        Term("fit", "fit", "chi", chi / 2 / d, "yt2"),
        Term("fluctuation", "fluctuation", "1", sp.log(d) / 2, "one"),
        Term("measure", "measure", "1", sp.log(s), None),
    )


def split(terms, dressed: bool):
    """(S0, S1) of the hbar counting: S0 at 1/hbar, S1 at hbar^0; dressed puts all in S0."""
    if dressed:
        return tuple(terms), ()
    return (
        tuple(x for x in terms if x.klass in HBAR_INVERSE),
        tuple(x for x in terms if x.klass in HBAR_ZERO),
    )


@dataclass(frozen=True)
class Observable:
    """O(s) = scalar * coefficient + sum_k coefficient_jk * summand(s, lam_k).

    ``summand``: per-mode part (contracted by runtime with the named coefficient matrix);
    ``scalar``: part without a mode sum (times a per-output coefficient), or 0.
    """

    name: str
    description: str
    summand: sp.Expr
    scalar: sp.Expr
    latex_name: str


def observables() -> tuple[Observable, ...]:
    """Observables given s (docs/theory.md §2a): train/test mean, test variance of f(x*), and s itself.

    train_mean: m(s) = U diag(r) yt              (coefficient U_ak yt_k)
    test_mean:  m*(s) = Kt diag(q) yt, Kt = k*^T U (coefficient Kt_jk yt_k)
    test_var:   v*(s) = (g_v s/chi) k** - (g_v s)^2/chi * Kt diag(1/d) Kt^T  (coefficients k**_j, Kt_jk^2)
    field_s:    s
    """
    d = g_v * s * lam + kappa
    return (
        Observable("train_mean", "posterior mean of the train outputs f(X)",
                   g_v * s * lam / d, sp.S.Zero, r"m"),
        Observable("test_mean", "posterior mean of the test outputs f(X*)",
                   g_v * s / d, sp.S.Zero, r"m_*"),
        Observable("test_var", "posterior variance of f(x*) given s (no label noise); the reported test "
                   "variance adds the variance over s of the test mean",
                   -(g_v * s) ** 2 / chi / d, g_v * s / chi, r"v_*"),
        Observable("field_s", "the rescaling field s", sp.S.Zero, s, r"s"),
        Observable("resolvent", "eigenvalues of the resolvent, for quadratic forms",
                   1 / d, sp.S.Zero, r"r"),
    )


#: spectral quadratic forms of a unit direction u in weight space (z = U^T X u sqrt(g_w/D)):
#: Q1 = z^T (g_v s K + kappa)^-1 z, Q2 = z^T (g_v s K + kappa)^-1 yt
Q1, Q2 = sp.symbols("Q1 Q2", real=True)
g_w, D = sp.symbols("g_w D", positive=True)
g_w_D = g_w / D
n_P, n_D = sp.symbols("P D_in", integer=True, positive=True)


def direction_modes():
    """z = sqrt(g_w/D) U^T X u: a weight-space direction u in the eigenbasis of K = U diag(lam) U^T
    (docs/theory.md §2a), the vector the quadratic forms Q1, Q2 contract with."""
    U = sp.MatrixSymbol("U", n_P, n_P)
    X = sp.MatrixSymbol("X", n_P, n_D)
    u = sp.MatrixSymbol("u", n_D, 1)
    return sp.sqrt(g_w / D) * U.T * X * u


def hidden_weight_direction():
    """u^T (1/N) E[W^T W | s] u - g_w/D for a unit vector u (docs/theory.md §2a):
    (g_w/D)(1 - 1/N) + (chi/(N g_v s)) (u^T Sigma_u u + (u^T mu)^2) - g_w/D with
    u^T mu = g_v s sqrt(g_w/D) Q2 and u^T Sigma_u u = (g_v s/chi)(g_w/D)(1 - g_v s Q1)."""
    u_mu = g_v * s * sp.sqrt(g_w_D) * Q2
    u_sigma_u = (g_v * s / chi) * g_w_D * (1 - g_v * s * Q1)
    total = g_w_D * (1 - 1 / N) + chi / (N * g_v * s) * (u_sigma_u + u_mu**2)
    return sp.expand(total - g_w_D)


def observable(name: str) -> Observable:
    for o in observables():
        if o.name == name:
            return o
    raise KeyError(name)


def _difference(expr, delta):
    """expr(s0 + delta) - expr(s0), rewritten without cancellation (log1p, factored rationals)."""
    expr = sp.expand_log(sp.expand(expr), force=True)
    if isinstance(expr, sp.Add):
        return sp.Add(*[_difference(a, delta) for a in expr.args])
    coeff, rest = expr.as_independent(s)
    if rest == 1:
        return sp.S.Zero
    if isinstance(rest, sp.log):
        arg = rest.args[0]
        ratio = sp.cancel((arg.subs(s, s0 + delta) - arg.subs(s, s0)) / arg.subs(s, s0))
        return coeff * log1p(ratio)
    return coeff * sp.factor(sp.together(rest.subs(s, s0 + delta) - rest.subs(s, s0)))


def action_difference(terms):
    """Per-term S(s0 + delta) - S(s0) in cancellation-free form, for the exact integral.

    Returns (delta_expr, [(Term, difference expression in delta)]) with delta = s0 expm1(t),
    s = s0 e^t. The exact quadrature needs S relative to its peak to ~1e-16 absolute accuracy
    although S itself is O(N chi); differences of the summands give exactly that.
    """
    delta = sp.Symbol("delta", real=True)
    out = []
    for term in terms:
        # ln(s/s0) = t exactly; keeping t (not log1p(expm1(t))) avoids inf - inf deep in the tail
        diff = _difference(term.expr, delta).subs(log1p(delta / s0), t)
        out.append((term, sp.collect(sp.expand(diff), t) if term.weight is None else diff))
    return delta, s0 * expm1(t), out


# ----------------------------------------------------------------------------- deep linear networks
#: log-rescaling offsets from a mode and the tilt of a layer's prior (docs/theory.md §2d)
delta = sp.Symbol("delta", real=True)
theta = sp.Symbol("theta", real=True)
shape = sp.Symbol("k", positive=True)


def likelihood_terms(terms=None):
    """The terms of S that depend on the rescaling only through the kernel g_v u K (fit and output
    fluctuations): for L layers they depend on the total rescaling u = s_1 ... s_L alone."""
    return tuple(tm for tm in (terms or action()) if tm.klass in ("fit", "fluctuation"))


def layer_log_density():
    """(log density of t = ln s_l relative to its mode, mode, shape k) for one layer's Gamma prior
    tilted by e^(theta t) (docs/theory.md §2d): from the prior and measure terms of S with s = e^t
    and the Jacobian ds = s dt. The result is -k (expm1(delta) - delta) with k = N/2 + theta, a
    form without cancellation near the mode; derived and checked here."""
    tt = sp.Symbol("t", real=True)
    own = [tm.expr for tm in action() if tm.klass in ("prior", "measure")]
    logp = -sum(own, sp.S.Zero).subs(s, sp.exp(tt)) + tt + theta * tt
    (mode,) = sp.solve(sp.diff(logp, tt), tt)
    relative = sp.expand(logp.subs(tt, mode + delta) - logp.subs(tt, mode))
    k = sp.simplify(-sp.diff(relative, delta, 2).subs(delta, 0))  # curvature at the mode
    form = -k * (expm1(delta) - delta)
    if sp.simplify(relative - form.rewrite(sp.exp)) != 0:
        raise ValueError("the tilted layer prior is not a log-Gamma density")
    return form, mode, k
