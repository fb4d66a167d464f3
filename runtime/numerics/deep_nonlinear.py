"""Kernel-adaptation chain of a deep network for any activation (docs/theory.md §2d, §6), orders 0, 1.

A unit of layer l has preactivations h ~ N(0, Sigma_l), Sigma_l = g_l C_{l-1} (Sigma_1 = K), tilted by
exp(phi(h)^T Ct_l phi(h)) on the training points. Sigma_l may be singular, so every layer is written in
the range of its training block: h = Sigma_l^1/2 z, z ~ N(0, I_P) (the symmetric root, continuous in
Sigma_l; null directions of Sigma_l are simply not seen by h); a test point t adds its conditional part, h_t = b_t . z + s_t xi_t, xi_t ~ N(0, 1) untilted. Expectations
under the tilted law are self-normalised importance sums over fixed draws z = R u (u standard normal,
drawn once: common random numbers), so one sweep of the chain's saddle map is a deterministic
function of the fields and is solved like the linear chain, by Anderson-accelerated iteration
(numerics.anderson). The proposal N(0, R R^T) starts at the prior and is re-centred on the solution's
Cov_q(z) until the effective sample size is high; R independent replicates give the Monte Carlo error
(their spread / sqrt(R)). Moments and the Stein-form backward pass are generated
(adaptive_nonlinear.empirical_moments; adaptive_deep_linear.stein_backward, and for ReLU, whose phi' is a
step that would make the map jump as draws cross the kink, score_backward, which needs no phi').
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from msat import generated
from msat.generated import densities

from . import anderson
from .proposal import TAIL_MAX, tail_index
from ..errors import ConvergenceError
from ..spectral import nngp_kernels, phi_kernels

#: eigenvalues of a layer's preactivation covariance below this fraction of the largest are its null space
RANK_RTOL = 1e-10
#: the proposal is re-centred until every layer's importance weights keep this fraction of the draws ...
ESS_TARGET = 0.8
#: ... and a result below this fraction carries a warning
ESS_MIN = 0.3
#: below this effective-sample fraction a sweep counts as infeasible (the fields tilt past the draws)
ESS_FLOOR = 0.02
#: re-centrings of the proposal at most
RECENTRE = 4


@dataclass
class DeepNonlinearState:
    chi: float
    C: list  # (C_l, C_l*, c_l**) per layer
    T: list  # Ct_l per layer
    predictions: dict
    mc_error: dict
    iterations: int
    ess: float  # smallest effective-sample fraction over layers and replicates
    warnings: list = field(default_factory=list)


class DeepNonlinearChain:
    def __init__(self, X, y, X_test, widths, g_ws, kappa, g_v, activation, order, draws=4000, replicates=4, seed=0):
        X_test = np.zeros((0, X.shape[1])) if X_test is None else X_test
        self.y = np.asarray(y, dtype=float)
        self.P, self.Pt = X.shape[0], X_test.shape[0]
        self.widths, self.g_ws = [float(n) for n in widths], [float(g) for g in g_ws]
        self.kappa, self.g_v, self.activation, self.order = float(kappa), float(g_v), activation, order
        self.act = densities.ACTIVATIONS.index(activation)
        lin = generated.linear_adaptation()
        self.top, self.predict = getattr(lin, f"conjugate_field_o{order}"), lin.predictions
        self.layer = generated.deep_linear_adaptation()
        self.moments = generated.nonlinear_adaptation()
        self.nngp_mod = generated.nngp_kernels()
        self.act_nngp = self.nngp_mod.ACTIVATIONS.index(activation)
        self.draws, self.replicates, self.seed = draws, replicates, seed
        L = len(widths)
        # the layers' NNGP kernels (every Ct = 0): the start of the ladder (docs/theory.md §5), and the
        # input kernels K = g_1 X X^T / D that make Sigma_1
        self.nngp = [nngp_kernels(X, X_test, self.g_ws[:l + 1], activation) for l in range(L)]
        self.inputs = nngp_kernels(X, X_test, self.g_ws[0], "linear")

    # -- one layer ------------------------------------------------------------------------------------
    def basis(self, l, below):
        """(L, B, s, Zmap, prior): h = L z on the training points, h_t = B_t . z + s_t xi_t, Sigma^+ h =
        z @ Zmap, with L = Sigma^1/2 the symmetric square root (a continuous function of Sigma, so the
        fixed draws move continuously with the fields); prior: the layer's untilted moments (the NNGP
        map of Sigma, generated), the control variate of the importance sums."""
        if l == 0:
            S, Ss, sss = self.inputs
        else:
            S, Ss, sss = (self.nngp_mod.layer_preactivations(np.asarray(a), self.g_ws[l]) for a in below)
        lam, U = np.linalg.eigh(0.5 * (S + S.T))
        keep = lam > RANK_RTOL * max(lam[-1], 1e-300)
        lam, U = lam[keep], U[:, keep]
        root, inv_root = (U * np.sqrt(lam)) @ U.T, (U / np.sqrt(lam)) @ U.T
        B = np.asarray(Ss).T @ inv_root
        s = np.sqrt(np.clip(np.asarray(sss).ravel() - np.sum(B * B, axis=1), 0.0, None))
        S, Ss, sss = (np.ascontiguousarray(a, dtype=float) for a in (S, Ss, np.asarray(sss).ravel()))
        prior = (S, Ss, sss) if self.activation == "linear" else phi_kernels(self.nngp_mod, self.act_nngp, S, Ss, sss)
        return root, B, s, inv_root, prior

    def draw(self, l, below, draws, Rz):
        """The layer's fixed draws mapped through its current covariance: features phi(h), phi'(h) on the
        training points, phi(h_t) on the test points, Sigma^+ h, and the log ratio prior/proposal."""
        Lm, B, s, Zmap, prior = self.basis(l, below)
        u, xi = draws
        R = np.eye(u.shape[1]) if Rz[l] is None else Rz[l]
        Z = u @ R.T
        H, Ht = Z @ Lm.T, Z @ B.T + xi * s
        F, dF = np.empty_like(H), np.empty_like(H)
        densities.features_and_slopes(H, self.act, F, dF)
        Ft, dFt = np.empty_like(Ht), np.empty_like(Ht)
        densities.features_and_slopes(Ht, self.act, Ft, dFt)
        base = self.layer.proposal_log_ratio(Z, u)[:, 0]
        return {"F": F, "dF": dF, "Ft": Ft, "Zp": Z @ Zmap, "Z": Z, "base": base, "prior": prior}

    def weigh(self, d, T):
        """Self-normalised importance weights of the tilted law q ∝ prior e^{phi^T T phi} and their
        effective-sample fraction (None if not finite)."""
        logw = d["base"] + self.layer.tilt(d["F"], T)[:, 0]
        if not np.all(np.isfinite(logw)):
            return None
        w = np.exp(logw - logw.max())
        w /= w.sum()
        return w, 1.0 / (np.sum(w * w) * w.size)

    def layer_moments(self, d, w):
        """(C, C*, c**): the untilted moments plus the tilt's change, the sums weighted to the tilted law
        minus those weighted to the untilted one over the same draws (a control variate: the change is
        small where the tilt is)."""
        def weighted(v):
            root = np.sqrt(v * v.size)[:, None]
            return self.moments.empirical_moments(root * d["F"], root * d["Ft"])

        w0 = np.exp(d["base"] - d["base"].max())  # the same draws weighted to the untilted law
        tilted, plain = weighted(w), weighted(w0 / w0.sum())
        C, Cs, css = (p + t - u for p, t, u in zip(d["prior"], tilted, plain))
        return 0.5 * (C + C.T), Cs, np.asarray(css).ravel()

    # -- the chain's saddle map ------------------------------------------------------------------------
    def field(self, C, chi):
        M = self.moments.fit_operator(C, self.kappa, self.g_v)
        try:
            cf = cho_factor(M)
        except np.linalg.LinAlgError:
            return None
        A = cho_solve(cf, np.eye(self.P))
        A = 0.5 * (A + A.T)
        alpha = A @ self.y
        return A, alpha, self.top(A, alpha[:, None], self.widths[-1], float(chi), self.g_v)

    def sweep(self, T, chi, draws, Rz):
        """The saddle map, ordered as the linear chain's: forward pass with the current fields, the top
        field, then the backward pass with the new fields (the draws of a layer reweighted, not redrawn)."""
        L = len(T)
        ds, Cs, ess, covs, ws = [], [], [], [], []
        for l in range(L):
            d = self.draw(l, Cs[-1] if l else None, draws[l], Rz)
            wt = self.weigh(d, T[l])
            if wt is None or wt[1] < ESS_FLOOR:
                return self._infeasible(l, wt)
            ds.append(d)
            Cs.append(self.layer_moments(d, wt[0]))
            ess.append(wt[1])
            ws.append(wt[0])
            covs.append((d["Z"] * wt[0][:, None]).T @ d["Z"])
        top = self.field(Cs[-1][0], chi)
        if top is None:
            self.why = "g_v C_L + kappa lost positive definiteness"
            return None
        new = [None] * L
        new[-1] = top[2]
        for l in range(L - 1, 0, -1):
            wt = self.weigh(ds[l], new[l])
            if wt is None or wt[1] < ESS_FLOOR:
                return self._infeasible(l, wt)
            args = (self.g_ws[l], self.widths[l], self.widths[l - 1])
            if self.activation == "relu":  # phi' is a step: the score form keeps the map continuous
                w0 = np.exp(ds[l]["base"] - ds[l]["base"].max())
                Tb = self.layer.score_backward(ds[l]["Zp"], wt[0][:, None], (w0 / w0.sum())[:, None], *args)
            else:
                Tb = self.layer.stein_backward(ds[l]["Zp"], ds[l]["F"], ds[l]["dF"], new[l], wt[0][:, None], *args)
            new[l - 1] = 0.5 * (Tb + Tb.T)
        return new, (Cs, min(ess), covs, ws)

    def _infeasible(self, l, wt):
        """No sweep from here (None), with the reason kept for the error the solver may end with."""
        self.why = (f"layer {l + 1}'s tilt is not finite on its draws" if wt is None else
                    f"layer {l + 1}'s importance weights keep {wt[1]:.2%} of its draws (floor {ESS_FLOOR:.0%})")
        return None

    def _replicate(self, chi, warm, rng):
        L, P = len(self.widths), self.P
        draws = [(rng.standard_normal((self.draws, P)), rng.standard_normal((self.draws, self.Pt))) for _ in range(L)]
        if warm is None:
            T, Rz = [np.zeros((P, P)) for _ in range(L)], [None] * L
        else:
            T, Rz = [t.copy() for t in warm[0]], list(warm[1])

        def unpack(v):
            return [v[l * P * P:(l + 1) * P * P].reshape(P, P) for l in range(L)]

        for _ in range(RECENTRE):
            def sweep(v):
                out = self.sweep(unpack(v), chi, draws, Rz)
                return None if out is None else (np.concatenate([t.ravel() for t in out[0]]), out[1])

            self.why = None
            try:
                x, (Cs, ess, covs, ws), it, _ = anderson.solve(sweep, np.concatenate([t.ravel() for t in T]), chi,
                                                           tol=1e-10, maxiter=100, what="adaptive: the deep chain")
            except ConvergenceError as err:  # where the sweeps left the feasible set, say which way
                if self.why is None or "feasible" not in str(err):
                    raise
                # relu near mean-field scaling: 8x the draws and a ladder in steps of 0.5 both failed (an outside
                # audit, depth 3, N = chi = 32), where the layer's law may have no saddle at all
                edge = ("; for relu the saddle may not exist there (a layer's tilted law stops being normalisable "
                        "near mean-field scaling, docs/theory.md §6): --method sample samples the networks"
                        if self.activation == "relu" else "")
                raise ConvergenceError(f"{err}: {self.why}; more draws (--mc-samples) or a finer chi ladder may "
                                       f"reach it{edge}", err.diagnostics) from None
            T = unpack(x)
            if ess >= ESS_TARGET:
                break
            Rz = [np.linalg.cholesky(0.5 * (c + c.T) + 1e-12 * np.eye(c.shape[0])) for c in covs]  # re-centre
        return T, Cs, ess, it, Rz, max(tail_index(w) for w in ws)

    def solve(self, chi, warm=None) -> DeepNonlinearState:
        """The chain at chi, each replicate started from its fields and proposal in ``warm`` (the
        previous state's ``warm``; default: the NNGP, every field zero, and the prior)."""
        rng = np.random.default_rng(self.seed)  # the same draws at every chi: a smooth ladder
        reps = [self._replicate(chi, None if warm is None else warm[i], rng) for i in range(self.replicates)]
        ess = min(r[2] for r in reps)
        warnings = []
        if ess < ESS_MIN:
            warnings.append(f"adaptive: importance weights keep {ess:.0%} of the draws (want >= {ESS_MIN:.0%}): "
                            "raise --mc-samples")
        tail = max(r[5] for r in reps)
        if tail >= TAIL_MAX:  # infinite variance: the replicates' spread understates the error, more draws or not
            warnings.append(f"adaptive: the importance weights are heavy-tailed (Pareto shape {tail:.2f} >= "
                            f"{TAIL_MAX}, docs/theory.md §6): the Monte Carlo error may be understated")
        L = len(self.widths)
        C = [tuple(np.mean([r[1][l][k] for r in reps], axis=0) for k in range(3)) for l in range(L)]
        T = [np.mean([r[0][l] for r in reps], axis=0) for l in range(L)]
        preds = self.predictions(C, chi)
        each = [self.predictions(r[1], chi) for r in reps]
        err = {k: np.std([e[k] for e in each], axis=0, ddof=1) / math.sqrt(len(each)) for k in preds}
        st = DeepNonlinearState(chi, C, T, preds, err, max(r[3] for r in reps), ess, warnings)
        st.warm = [(r[0], r[4]) for r in reps]
        return st

    def predictions(self, C, chi) -> dict:
        CL, Cs, css = C[-1]
        top = self.field(CL, chi)
        if top is None:
            raise ConvergenceError("adaptive: g_v C_L + kappa is not positive definite", {"chi": chi})
        A, alpha, _ = top
        tr, te, va = self.predict(CL, Cs, np.asarray(css)[:, None], A, alpha[:, None], self.g_v, float(chi))
        return {"train_mean": tr[:, 0], "test_mean": te[:, 0], "test_var": va[:, 0]}
