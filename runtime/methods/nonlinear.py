"""`--method adaptive`, erf and relu networks (docs/theory.md §2b, §2e, §6): the saddle of the adapted
single-neuron law by the cumulant expansion (small chi/N) or the single-neuron Monte Carlo
(numerics.nonlinear_saddle), warm-started along the ladder from the NNGP; order 2 adds the kernel
field's one loop with Monte Carlo cumulants (numerics.nonlinear_loop)."""
from __future__ import annotations

import numpy as np

from ..errors import ConvergenceError
from ..ladder import Solver, annealed, relative_change
from ..numerics.replicates import REPLICATES, replicate_sets
from ..numerics.nonlinear_loop import loop_correction
from ..numerics.nonlinear_saddle import NonlinearSaddle
from ..numerics.observe import alignment_of, alignment_of_spectrum
from ..progress import status
from ..numerics.rescale import effective_rescaling
from ..numerics.truncation import STANDARD_CHI_OVER_N, standard_scaling_note
from ..results import Result
from . import nngp
from ..spectral import spanned, spectrum

#: order 2 with P/N at least this carries a warning: its (P/N)^2 error is not small
ORDER2_P_OVER_N = 0.5
#: order 1 away from standard scaling with P/N at least this carries one too: measured (P = 6, N = 1..3, chi = N)
#: it was further from the networks than the NNGP; at P/N = 0.5 it removes most of the NNGP's error
ORDER1_LARGE_P_OVER_N = 1.0
#: a failed cold start climbs from chi = 1 by doublings, each step split up to this many times where it fails
COLD_RETRIES = 3


def _rms(*arrays) -> float:
    v = np.concatenate([np.ravel(a) for a in arrays] or [np.zeros(0)])
    return float(np.sqrt(np.mean(v * v))) if v.size else 0.0


def nngp_means(spec_phi, chi, kappa, g_v):
    """The NNGP's train and test means at chi (the infinite-width reference the theory corrects)."""
    train, test, _ = nngp.predictions(spec_phi, [chi], kappa, g_v)
    return train[0], test[0]


def resolution_warnings(st, preds, err, nngp):
    """Say when the Monte Carlo error is as large as what the result resolves: the finite-width
    correction (the distance from the NNGP), or for order 2 the loop correction."""
    out = []
    mc = _rms(*(err[k] for k in ("train_mean", "test_mean") if k in err))
    shift = _rms(preds["train_mean"] - nngp[0], preds["test_mean"] - nngp[1])
    if mc > shift:
        out.append(f"the Monte Carlo error of the means (RMS {mc:.2g}) exceeds the finite-width correction "
                   f"it resolves (RMS distance from the NNGP {shift:.2g}): raise --mc-samples")
    lp = getattr(st, "loop", None)
    if lp is not None and _rms(lp.train_mcse, lp.test_mcse) > _rms(lp.train, lp.test):
        out.append(f"the Monte Carlo error of the field's loop (RMS {_rms(lp.train_mcse, lp.test_mcse):.2g}) "
                   f"exceeds the loop correction itself (RMS {_rms(lp.train, lp.test):.2g})")
    if lp is not None and _rms(lp.var_mcse) > _rms(lp.var):
        out.append(f"the Monte Carlo error of the test variances' loop (RMS {_rms(lp.var_mcse):.2g}) exceeds "
                   f"that correction itself (RMS {_rms(lp.var):.2g})")
    return out


class _Solver(Solver):
    def __init__(self, data, params):
        self.data, self.params = data, params
        self.spec_phi = spectrum(data.X, data.y, data.X_test, params.g_w, params.activation)
        # the single-neuron law in the span of the inputs (spectral.spanned: the same network; draws in the
        # directions no input sees made the proposals' estimated moments fail on rank-deficient inputs)
        self.X, self.X_test, self.g_w = spanned(data.X, data.X_test, params.g_w)
        # independent draw sets behind every Monte Carlo error (fewer where --mc-samples is small)
        self.replicates = replicate_sets(params.mc_samples) if params.mc_samples else REPLICATES
        self._saddles = {}

    def estimator(self, chi):
        # "auto": the single-neuron Monte Carlo on fixed draws (docs/theory.md §6), unbiased at every chi
        # and, with its Gaussian control variate, more precise than the cumulant expansion even at chi = 1
        est = self.params.estimator
        return "mc" if est == "auto" else est

    def saddle(self, est):
        """One solver per estimator, built when first needed (its draws are fixed by the seed)."""
        if est not in self._saddles:
            p, d, kw = self.params, self.data, {"replicates": self.replicates}
            if p.mc_samples:
                # mc_samples counts Monte Carlo draws: prior draws for the cumulant estimator; for the
                # single-neuron Monte Carlo its final fixed draws (all replicate sets), and ~300 recorded
                # states per chain and replicate pass where the stochastic iteration is needed first
                kw.update({"n_prior": int(p.mc_samples)} if est == "cumulant"
                          else {"n_chains": int(min(max(p.mc_samples // 300, 16), 512)),
                                "n_fixed": int(p.mc_samples) // self.replicates})  # at least 500 per set
            # order 2 is order 1's saddle plus the field's loop (docs/theory.md §2e)
            self._saddles[est] = NonlinearSaddle(self.X, d.y, self.X_test, p.N, p.kappa, p.g_v, self.g_w,
                                                 p.activation, min(p.order, 1), estimator=est, seed=p.seed,
                                                 **kw)
        return self._saddles[est]

    def _saddle_at(self, chi, warm):
        """Order 1's saddle at chi from `warm` (a neighbouring chi's, or None: the NNGP's field)."""
        C_prev, mc_state = warm if warm is not None else (None, None)
        est = self.estimator(chi)
        try:
            st = self.saddle(est).solve(chi, C_prev, mc_state=mc_state)
        except ConvergenceError as err:
            if est != "cumulant":
                raise
            raise ConvergenceError(f"{err}; the cumulant estimator expands q(w) about the prior in the field Ct "
                                   "(docs/theory.md §6), which fails where the tilt is strong (small kappa, large "
                                   "chi/N): --estimator mc samples q itself", err.diagnostics) from None
        st.estimator = est
        return st

    def solve(self, chi, warm):
        try:
            st = self._saddle_at(chi, warm)
        except ConvergenceError:
            if warm is not None or chi <= 2.0 or self.estimator(chi) == "cumulant":
                raise
            # a cold start far from chi = 1 (the NNGP's field) can tilt q past every draw set (erf, small kappa,
            # chi = N: 4 of 6 seeds), where the ladder 1, 2, 4, ... solves: climb it (docs/theory.md §5)
            st = annealed(self._saddle_at, chi, self.warm, COLD_RETRIES)
        est = st.estimator
        st.loop = None
        if self.params.order == 2:
            p, d = self.params, self.data
            Xt = np.zeros((0, self.X.shape[1])) if self.X_test is None else self.X_test
            # --mc-samples M sets the loop's first draws too (M/R per set, as for the saddle's final sets)
            sad = self.saddle(est)
            reps = [(C, Cs, sad.field(C, chi)[2], out) for C, Cs, _, out in st.saddles]
            status("order 2: the kernel field's loop at order 1's saddle")
            st.loop = loop_correction(self.X, Xt, d.y, st.C, st.Cs, st.Ct, p.N, chi, p.kappa, p.g_v, self.g_w,
                                      p.activation, seed=p.seed, first=int(p.mc_samples or 0) // self.replicates,
                                      replicas=reps, replicates=self.replicates)
            why = self.unresolved(st)
            if why and p.order_note is None:  # the user asked for order 2
                raise ConvergenceError(f"adaptive --order 2: {why}; --order 1 gives the saddle alone", {"chi": chi})
            if why:
                st.loop, st.order_fallback = None, f"order 1 instead of the default order 2 at this chi: {why}"
        return st

    def unresolved(self, st):
        """Why order 2's loop is no answer at this point, or None: it makes a test variance negative, or its
        Monte Carlo error exceeds the whole finite-width correction order 1 finds (its distance from the NNGP),
        which order 1 then resolves better. Both happen where the loop's propagator is nearly singular (nearly
        null modes of C at small kappa: rank-deficient inputs, repeated points; docs/theory.md §2e)."""
        lp, pr = st.loop, st.predictions
        var = np.asarray(pr["test_var"]) + lp.var
        if var.size and var.min() < 0:
            return f"the loop makes test variances negative (down to {var.min():.3g}): the one loop fails here"
        nngp_train, nngp_test = st.nngp = self.nngp_means(st.chi)  # kept for the point's resolution warnings
        noise = _rms(lp.train_mcse, lp.test_mcse)
        shift = _rms(pr["train_mean"] - nngp_train, pr["test_mean"] - nngp_test)
        if noise > shift:
            return (f"the Monte Carlo error of the field's loop (RMS {noise:.2g}) exceeds the whole finite-width "
                    f"correction order 1 finds (RMS distance from the NNGP {shift:.2g})")
        return None

    def warm(self, state):
        return state.C, getattr(state, "mc_state", None)

    def change(self, state, prev):
        return relative_change(state.C, prev.C)

    def nngp_means(self, chi):
        return nngp_means(self.spec_phi, chi, self.params.kappa, self.params.g_v)

    resolution_warnings = staticmethod(resolution_warnings)

    def results(self, states):
        y, out = self.data.y, []
        for st in states:
            # a point whose default order 2 fell back to order 1 says so, with order 1 in its result
            fallback = getattr(st, "order_fallback", None)
            p = self.params.replace(order=1, order_note=fallback) if fallback else self.params
            obs = {
                "estimator": st.estimator,
                "kernel_alignment": alignment_of(y, st.C),
                "kernel_alignment_nngp": alignment_of_spectrum(self.spec_phi),
                "kernel_top_eigenvalues": np.linalg.eigvalsh(st.C)[::-1][:5].tolist(),
                "fixed_point_iterations": st.iterations,
            }
            if st.sets > 1:  # the errors' z-scores follow Student's t with sets - 1 degrees of freedom
                obs["mc_error_sets"] = st.sets
            if st.acceptance is not None:
                obs["mala_acceptance"] = st.acceptance
            unsettled = None
            if getattr(st, "fixed", None) is not None:  # the single-neuron Monte Carlo's final draws
                obs["final_draws"] = st.fixed.draws
                obs["effective_sample_fraction"] = st.fixed.effective_fraction
                if getattr(st.fixed, "masses", None):  # q weighed region by region (numerics.mixture_saddle)
                    obs["region_log_masses"] = {name: {"log_mass": m, "mcse": e} for name, m, e in st.fixed.masses}
                if not getattr(st.fixed, "settled", True):
                    unsettled = (f"adaptive: at chi = {st.chi:g} the fixed point on the single-neuron draws could not "
                                 "be solved finely enough that its stop moves no output by a tenth of its MCSE "
                                 "(finer solves failed or their rounds ran out): the errors may not hold the stop's "
                                 "error (docs/theory.md §6)")
            preds = dict(st.predictions)
            err = {k: np.asarray(v) for k, v in st.mc_error.items()}
            if st.loop is not None:
                lp = st.loop
                preds["train_mean"] = preds["train_mean"] + lp.train
                preds["test_mean"] = preds["test_mean"] + lp.test
                preds["test_var"] = preds["test_var"] + lp.var
                for k, e in (("train_mean", lp.train_mcse), ("test_mean", lp.test_mcse), ("test_var", lp.var_mcse)):
                    err[k] = np.sqrt(err[k] ** 2 + e ** 2) if k in err else e
                for k, e in (lp.total_mcse or {}).items():  # the saddle's noise through the correction (max)
                    err[k] = np.maximum(err[k], e)
                obs.update({"loop_correction": float(np.max(np.abs(lp.train))),
                            "loop_correction_mcse": float(np.max(lp.train_mcse)),
                            "loop_test_correction": float(np.max(np.abs(lp.test), initial=0.0)),
                            "loop_bias_estimate": lp.bias, "loop_draws": lp.draws,
                            "loop_effective_fraction": lp.effective_fraction, "field_dimension": lp.dimension,
                            "loop_n_draws": lp.n_draws,
                            "test_var_source": "the field's one loop: the variance given the field plus the test "
                                               "means' variance over the field"})
            obs["layers"] = [{k: obs[k] for k in ("kernel_alignment", "kernel_top_eigenvalues")}]
            obs.update(effective_rescaling(self.spec_phi, preds["train_mean"], p.kappa, p.g_v))
            err = {k: np.asarray(v).tolist() for k, v in err.items()}
            # the contract's Monte Carlo keys (docs/cli.md), beside the per-output mc_error of earlier versions
            extra = {k + "_mcse": err[k] for k in ("train_mean", "test_mean") if k in err}
            extra.update({"observables": obs, "mc_error": err})
            res = Result.point(p, st.chi, preds, extra)
            nngp_means = getattr(st, "nngp", None) or self.nngp_means(st.chi)
            res.warnings.extend(self.resolution_warnings(st, preds, err, nngp_means))
            if unsettled:
                res.warnings.append(unsettled)
            if p.order_note:
                res.warnings.append(p.order_note)
            res.warnings.extend(order_warnings(p, st.chi))
            out.append(res)
        return out


def solver(data, params, **_):
    return _Solver(data, params)


def order_warnings(p, chi, loop=True) -> list:
    """Say where a result's truncation error (O(P/N) for orders 0 and 1, O((P/N)^2) for order 2, docs/theory.md §2e)
    is as large as the finite-width correction it computes; N is the narrowest width at depth. `loop`: whether
    order 2 exists for these networks (not at depth)."""
    n = min(getattr(p, "widths", None) or [p.N])
    ratio, out = p.P / n, []
    remedy = ("--order 2 adds the kernel field's loop" if loop else "order 2 is not available at depth") + \
        ", --method sample samples the networks"
    near = ("--order 2 adds the kernel field's loop, which removes most of it for small P" if loop
            else "order 2 is not available at depth; --method sample samples the networks")
    if p.order == 0:  # tree level: order 1 first adds the output fluctuations
        near = "--order 1 adds the output fluctuations; " + near
    if p.order == 2 and ratio >= ORDER2_P_OVER_N:
        out.append(f"P/N = {ratio:.2g}: order 2's O((P/N)^2) error is not small here; measured, order 2 gains only "
                   "about 2x on order 1 at N = 2P, and where P exceeds N it can be further from the networks than "
                   "the NNGP (docs/theory.md §2e): --method sample samples them")
    elif p.order in (0, 1) and chi / p.N > STANDARD_CHI_OVER_N and ratio >= ORDER1_LARGE_P_OVER_N:
        out.append(f"P/N = {ratio:.2g}: order {p.order}'s O(P/N) error is not small here and can exceed the whole "
                   f"finite-width correction, leaving it further from the networks than the NNGP (docs/theory.md "
                   f"§2e): {remedy}")
    out.extend(filter(None, [standard_scaling_note(p.order, chi, p.N, near)]))
    return out
