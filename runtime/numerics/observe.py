"""Observables of the kernel-rescaling field at given s (docs/theory.md §2a, §4).

The generated kernel ``observable_tables`` gives, per node and derivative order, the per-mode
summands and scalar parts of each observable; this module only contracts them with the spectral
projections (U, Kt = k*^T U, k**) by matrix products -- linear-algebra plumbing.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from msat import generated
from msat.generated import observables as gen_observables

from ..errors import ConvergenceError
from ..spectral import Spectrum


class Tables:
    """d^n/ds^n of the observables' summands at nodes (s_j, chi_j), n = 0..nmax.

    Arrays: train (J, n, K), test (J, n, K), var (J, n, K), var_scalar (J, n), s (J, n),
    resolvent (J, n, K) (eigenvalues of (g_v s K + kappa)^-1).
    """

    def __init__(self, spec: Spectrum, s_nodes, chi_nodes, kappa, g_v, order: int):
        mod = generated.rescaling(order)
        J = len(s_nodes)
        n = mod.N_TABLE
        K = spec.modes
        self.train = np.empty((J, n, K))
        self.test = np.empty((J, n, K))
        self.var = np.empty((J, n, K))
        self.var_scalar = np.empty((J, n))
        self.s = np.empty((J, n))
        self.resolvent = np.empty((J, n, K))
        mod.observable_tables(
            np.ascontiguousarray(s_nodes, dtype=np.float64),
            np.ascontiguousarray(chi_nodes, dtype=np.float64),
            float(kappa), float(g_v), spec.lam,
            self.train, self.test, self.var, self.var_scalar, self.s, self.resolvent,
        )


def train_mean(spec: Spectrum, coef: np.ndarray) -> np.ndarray:
    """m = U diag(coef) yt for each row of coef (..., K) -> (..., P)."""
    return spec.points(coef * spec.yt)


def test_mean(spec: Spectrum, coef: np.ndarray) -> np.ndarray:
    """m* = Kt diag(coef) yt for each row of coef (..., K) -> (..., P*)."""
    return (coef * spec.yt) @ spec.Kt.T


def test_var(spec: Spectrum, coef_modes: np.ndarray, coef_scalar: np.ndarray) -> np.ndarray:
    """v* = coef_scalar k** + Kt^2 coef_modes for rows (..., K), (...) -> (..., P*)."""
    return coef_scalar[..., None] * spec.kss + coef_modes @ (spec.Kt * spec.Kt).T


#: the remedy the round-off messages give. The prior's output scale is sqrt(g_v/chi) and the noise's sqrt(kappa/chi)
#: (docs/theory.md §1): y / c is the posterior of y with g_v and kappa times c^2 (outputs over c), so either brings the
#: targets to the prior's scale with the same signal to noise (an audit: at chi = 1e20 the advice was "--g-v near the
#: targets' variance", 1e20 times too small, and a g_v alone large enough makes kappa too small to resolve)
RESCALE = ("bring y near the prior's output scale sqrt(g_v/chi): divide y by a factor c, or multiply --g-v and --kappa "
           "both by c^2")


#: a test variance whose round-off bound exceeds this share of it is no answer (test_var_roundoff)
VAR_LOST = 1e-2


def test_var_roundoff(spec: Spectrum, coef_modes: np.ndarray, coef_scalar: np.ndarray) -> np.ndarray:
    """A bound on the round-off of test_var: its terms cancel when the rescaling s is large (targets far above the
    prior's output scale: an outside audit had y x 1e15 give variances 2.8 times off, y x 1e30 negative, at exit 0),
    and float64 keeps them to eps times their magnitudes."""
    eps = np.finfo(np.float64).eps  # 2 eps: a review measured the true error 20 times under 8 eps's bound
    return 2 * eps * (np.abs(coef_scalar)[..., None] * spec.kss + np.abs(coef_modes) @ (spec.Kt * spec.Kt).T)


def spread_roundoff(p: np.ndarray, m: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """A bound on the round-off of the variance p @ (m - mean)^2 of node means m (nodes, P*) about their mean."""
    return 2 * np.finfo(np.float64).eps * p @ (np.abs(m) * np.abs(m - mean))


def judge_roundoff(var: np.ndarray, bound: np.ndarray, where: str) -> float:
    """The largest share of a variance its round-off bound makes; ConvergenceError where it exceeds VAR_LOST."""
    share = float(np.max(bound / np.maximum(np.abs(var), 1e-300), initial=0.0))
    if share > VAR_LOST:
        raise ConvergenceError(f"{where}: the test variances are lost to round-off (bound {share:.2g} of them): "
                               "targets far above the prior's output scale make their terms cancel; " + RESCALE,
                               {"roundoff_share": share})
    return share


#: node x test-point entries of the test outputs held at once (three such arrays and their masked copies, ~16 MB
#: each at most): many test points are evaluated in blocks rather than charged every quadrature node's row of them
TEST_BLOCK = 1 << 21


def integrator(spec: Spectrum, s_nodes, w, chi, kappa, g_v):
    """(tables, integrate, shares): the observables of docs/theory.md §2a at the nodes, the posterior
    moments they give for node weights w restricted to each of some masks (the law of total variance
    for the test variance), the test points taken in blocks of at most TEST_BLOCK node-point entries, and
    the round-off shares of the test variances that each integration bounded (judge_roundoff)."""
    tab = Tables(spec, s_nodes, np.full_like(s_nodes, chi), kappa, g_v, order=0)
    n_test, block, shares = spec.Kt.shape[0], max(1, TEST_BLOCK // len(s_nodes)), []

    def integrate(masks):
        ps = [w[mask] / w[mask].sum() for mask in masks]
        test, tvar, bound = (np.empty((len(masks), n_test)) for _ in range(3))
        for b in range(0, max(n_test, 1), block):
            sub = dataclasses.replace(spec, Kt=spec.Kt[b:b + block], kss=spec.kss[b:b + block])
            mstar = test_mean(sub, tab.test[:, 0, :])  # (nodes, block)
            vstar = test_var(sub, tab.var[:, 0, :], tab.var_scalar[:, 0])
            vbound = test_var_roundoff(sub, tab.var[:, 0, :], tab.var_scalar[:, 0])
            for j, (mask, p) in enumerate(zip(masks, ps)):
                t = test[j, b:b + block] = p @ mstar[mask]
                tvar[j, b:b + block] = p @ vstar[mask] + p @ (mstar[mask] - t) ** 2
                bound[j, b:b + block] = p @ vbound[mask] + spread_roundoff(p, mstar[mask], t)
        out = []
        for j, (mask, p) in enumerate(zip(masks, ps)):
            shares.append(judge_roundoff(tvar[j], bound[j], "exact"))
            sm = p @ s_nodes[mask]
            out.append((train_mean(spec, p @ tab.train[mask, 0, :]), test[j], tvar[j], sm,
                        p @ (s_nodes[mask] - sm) ** 2))
        return out

    return tab, integrate, shares


#: the measured round-off share of test variances (probed in other units) above which a point is not converged
#: (values kept), and a warning
PROBED_FAIL, PROBED_WARN = 1e-2, 1e-5


def variance_shift(v: np.ndarray, v2: np.ndarray) -> float:
    """The largest relative difference of test variances v2 from v (a vanishing one judged against the largest)."""
    a = np.abs(v)
    return float(np.max(np.abs(v2 - v) / np.maximum(a, max(1e-12 * float(a.max()), 1e-300))))


def mark_probed(result, lost: float, note: str) -> None:
    """A result not converged (values kept) where its probed round-off share exceeds PROBED_FAIL, warned past
    PROBED_WARN; NaN (no measure) leaves it as it is."""
    if lost > PROBED_FAIL:
        result.unconverged(note, {"roundoff": lost})
    elif lost > PROBED_WARN:
        result.warnings.append(note)


def kernel_target_alignment(yCy: float, yy: float, frobenius: float) -> float:
    """Kernel-target alignment (docs/theory.md §4, generated) from its three parts, so that callers
    can supply them in whatever basis they hold C (matrix, eigenvalues)."""
    return float(gen_observables.kernel_target_alignment(float(yCy), float(yy), float(frobenius)))


def alignment_of(y, C) -> float:
    """kernel_target_alignment of a dense kernel matrix C."""
    return kernel_target_alignment(y @ C @ y, y @ y, np.linalg.norm(C))


def alignment_of_spectrum(spec: Spectrum) -> float:
    """kernel_target_alignment of the kernel whose eigenpairs spec holds (y^T K y = sum lam yt^2)."""
    return kernel_target_alignment(np.sum(spec.mult * spec.lam * spec.yt2), spec.y2, np.sqrt(spec.mult @ spec.lam**2))
