"""A second ground truth for any activation: HMC over the hidden weights alone, the readout integrated
out exactly, the outputs Rao-Blackwellised (docs/theory.md §7).

Given W the network is linear in its readout, so y | W is Gaussian (generated.marginal_posterior:
covariance, log density, its SymPy gradient, and each draw's conditional moments of the outputs). The
chain moves in the N x D weights only, with the two-layer sampler's warm-up (numerics.hmc.adapt: step
size and one mass), Metropolis step and process pool; each draw records E[f | W, y] and Var[f | W, y]
instead of one sampled network's outputs, so the posterior mean is an average of conditional means
and the posterior variance is E[Var[f | W]] + Var[E[f | W]]. Cov (P x P) is factorised once per
gradient (Cholesky: linear-algebra plumbing) where P <= N; where P > N its rank-N part is, through the N x N
matrix of the Woodbury identity (Cov^-1 v and log det Cov without a P x P matrix: an outside audit's P = 20,000,
N = 20 took 12.7 GB and did not finish in 400 s).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from msat import generated
from msat.generated import densities

from .hmc import JITTER, acceptance, adapt, run_jobs


@dataclass
class MarginalChain:
    train: np.ndarray  # (draws, P) E[f | W, y]
    train_cvar: np.ndarray  # (draws, P) Var[f | W, y]
    test: np.ndarray  # (draws, P*) E[f* | W, y]
    test_cvar: np.ndarray  # (draws, P*) Var[f* | W, y]
    accept: np.ndarray  # (draws,)
    eps: float
    n_leap: int
    masses: tuple
    W: np.ndarray


class _Posterior:
    """log p(W | D) and its gradient, and a draw's conditional moments (generated formulas)."""

    def __init__(self, X, y, X_test, N, chi, kappa, g_v, g_w, activation):
        self.M = generated.readout_marginal()
        self.X, self.y, self.X_test = X, y[:, None], X_test
        self.act = densities.ACTIVATIONS.index(activation)
        self.var_a, self.s2 = self.M.variances(N, chi, kappa, g_v)
        self.D, self.g_w = float(X.shape[1]), float(g_w)
        P = X.shape[0]
        self.Phi, self.dPhi = np.empty((P, N)), np.empty((P, N))

    def _features(self, X, W, Phi, dPhi):
        densities.features_and_slopes(X @ W.T, self.act, Phi, dPhi)

    def _factor(self, Phi):
        """(Cov^-1 V for a P x k array V, Cov^-1 Phi M for an N x k array M, log det Cov), Cov = var_a Phi Phi^T +
        s2 I (generated covariance): by its Cholesky factor where P <= N; else by Woodbury's N x N matrix
        G = Phi^T Phi + (s2 / var_a) I: Cov^-1 = (I - Phi G^-1 Phi^T) / s2, which on the span of Phi is
        Cov^-1 Phi = Phi G^-1 / var_a, free of the cancellation the first form has there at small s2 (a review:
        test variances off by 2% at kappa = 1e-6, negative at chi = N), and det Cov = s2^P (var_a / s2)^N det G."""
        P, N = Phi.shape
        if P <= N:
            cf = scipy.linalg.cho_factor(self.M.covariance(Phi, self.var_a, self.s2), lower=True, check_finite=False)
            solve = lambda V: scipy.linalg.cho_solve(cf, V, check_finite=False)  # noqa: E731
            return solve, (lambda M: solve(Phi @ M)), 2.0 * float(np.sum(np.log(np.diag(cf[0]))))
        G = Phi.T @ Phi
        G[np.diag_indices(N)] += self.s2 / self.var_a
        cg = scipy.linalg.cho_factor(G, lower=True, check_finite=False)
        inv = lambda M: scipy.linalg.cho_solve(cg, M, check_finite=False)  # noqa: E731
        logdet = (P * math.log(self.s2) + N * math.log(self.var_a / self.s2)
                  + 2.0 * float(np.sum(np.log(np.diag(cg[0])))))
        return (lambda V: (V - Phi @ inv(Phi.T @ V)) / self.s2), (lambda M: Phi @ inv(M) / self.var_a), logdet

    def __call__(self, W):
        """(log p, gradient, factor state) at W."""
        Phi, dPhi = np.empty_like(self.Phi), np.empty_like(self.dPhi)
        self._features(self.X, W, Phi, dPhi)
        solve, on_span, logdet = self._factor(Phi)
        a = solve(self.y)
        CiPhi = on_span(np.eye(Phi.shape[1]))
        if not (np.isfinite(logdet) and np.all(np.isfinite(a))):
            raise np.linalg.LinAlgError("Cov is numerically singular")
        lp = self.M.log_density(float(self.y[:, 0] @ a[:, 0]), logdet, float(np.sum(W * W)), self.D, self.g_w)
        G = self.M.feature_gradient(a, self.y, Phi, CiPhi, self.var_a)
        return lp, self.M.weight_gradient(G, dPhi, self.X, W, self.D, self.g_w), (Phi, on_span, a, CiPhi)

    def moments(self, W, state):
        """Conditional (train mean, train var, test mean, test var) of the outputs at W."""
        Phi, on_span, a, CiPhi = state
        Phis, dPhis = np.empty((self.X_test.shape[0], W.shape[0])), np.empty((self.X_test.shape[0], W.shape[0]))
        self._features(self.X_test, W, Phis, dPhis)
        B = Phis @ Phi.T
        CiB = on_span(Phis.T)  # Cov^-1 B^T, B^T = Phi Phis^T on the span of Phi
        out = self.M.conditional_moments(Phi, Phis, a, CiPhi, B, CiB, self.var_a, self.s2)
        return tuple(o[:, 0] for o in out)


def _run_chain(args):
    X, y, X_test, N, chi, kappa, g_v, g_w, activation, draws, warmup, seed = args
    post = _Posterior(X, y, X_test, N, chi, kappa, g_v, g_w, activation)
    rng = np.random.default_rng(seed)
    D = X.shape[1]
    var_w = densities.prior_variances(N, D, chi, g_v, g_w)[0]
    W = rng.standard_normal((N, D)) * math.sqrt(var_w)
    cur = post(W)

    def iterate(eps, n_leap, mass, jitter):
        """One HMC iteration from W (kept in the closure); returns the acceptance probability."""
        nonlocal W, cur
        e = eps * (1.0 + jitter * (2.0 * rng.random() - 1.0))
        p = rng.standard_normal(W.shape) * math.sqrt(mass)
        H0 = -cur[0] + 0.5 * float(np.sum(p * p)) / mass
        Wn, g, new = W.copy(), cur[1], cur
        for _ in range(n_leap):
            p += 0.5 * e * g
            Wn += (e / mass) * p
            try:
                new = post(Wn)
            except np.linalg.LinAlgError:
                # a trajectory that flew off (a warm-up trial step, |W| ~ 1e8) leaves Cov numerically singular
                # where its noise s2 is lost to rounding (rank D < P for linear units): a rejected proposal, as a
                # non-finite energy is in the full sampler, not a failed chain
                return 0.0
            g = new[1]
            p += 0.5 * e * g
        acc = acceptance(H0, -new[0] + 0.5 * float(np.sum(p * p)) / mass)
        if rng.random() < acc:
            W, cur = Wn, new
        return acc

    def step(eps, n_leap, masses):
        acc = iterate(eps, n_leap, masses[0], 0.0)
        return acc, (float(np.sum(W * W)),)

    eps, n_leap, masses = adapt(step, warmup, (W.size,), (1.0 / var_w,), 0.05, 10)
    P, Q = X.shape[0], X_test.shape[0]
    rec = {k: np.empty((draws, n)) for k, n in (("train", P), ("train_cvar", P), ("test", Q), ("test_cvar", Q))}
    accept = np.empty(draws)
    for it in range(draws):
        accept[it] = iterate(eps, n_leap, masses[0], JITTER)
        for k, v in zip(("train", "train_cvar", "test", "test_cvar"), post.moments(W, cur[2])):
            rec[k][it] = v
    return MarginalChain(rec["train"], rec["train_cvar"], rec["test"], rec["test_cvar"], accept, eps, n_leap,
                         masses, W)


def run_chains(X, y, X_test, *, N, chi, kappa, g_v=1.0, g_w=1.0, activation="linear", samples=1000,
               chains=4, seed=0, warmup=None, progress=False, processes=None):
    """`chains` chains of the hidden weights' marginal posterior (in parallel processes)."""
    X = np.ascontiguousarray(X, dtype=float)
    y = np.ascontiguousarray(y, dtype=float)
    X_test = np.ascontiguousarray(np.zeros((0, X.shape[1])) if X_test is None else X_test, dtype=float)
    warmup = max(samples // 2, 200) if warmup is None else warmup
    seeds = np.random.SeedSequence(seed).generate_state(chains)
    jobs = [(X, y, X_test, int(N), float(chi), float(kappa), float(g_v), float(g_w), activation, int(samples),
             int(warmup), int(s)) for s in seeds]
    return run_jobs(_run_chain, jobs, processes, progress)
