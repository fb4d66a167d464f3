"""`--method adaptive`: kernel adaptation (THEORY §2b) as result objects of the DESIGN.md contract.

Linear phi: the structured saddle of runtime.adaptive; erf/relu: runtime.nonlinear with the
cumulant or single-neuron Monte Carlo estimator. Both anneal along the chi ladder from the NNGP
(THEORY §5). Observables (THEORY §4) go under "observables".
"""
from __future__ import annotations

import numpy as np

from . import adaptive as _lin
from . import nonlinear as _nl
from .predict import failure, result
from .observe import alignment_of, alignment_of_spectrum, kernel_target_alignment
from .rescale import effective_rescaling
from .spectral import decompose, nngp_kernels

#: chi/N below which "auto" uses the cumulant expansion of THEORY §6
CUMULANT_MAX_CHI_OVER_N = 0.1


def adaptive_results(data, params, chis, order, mc_samples=None):
    if params["activation"] == "linear":
        return _linear(data, params, chis, order)
    return _nonlinear(data, params, chis, order, mc_samples)


def _linear(data, params, chis, order):
    if order == 2:
        return _kernel_field(data, params, chis)
    N, kappa, g_v, g_w = params["N"], params["kappa"], params["g_v"], params["g_w"]
    spec = decompose(*_kernels(data, g_w, "linear"))
    solver = _lin.LinearSaddle(spec, N, kappa, g_v, order)
    states, failed = _lin.ladder(solver, chis)
    out = []
    for st in states:
        pr = solver.predictions(st)
        obs = solver.observables(st, pr["B"], pr["E"], g_w, params["D"])
        obs.pop("direction_r")
        obs.update(effective_rescaling(spec, pr["train_mean"], kappa, g_v))
        obs.update({"newton_iterations": st.iterations, "saddle_residual": st.residual})
        r = result("adaptive", order, params, st.chi, pr, {"observables": obs})
        r["warnings"] += st.warnings
        out.append(r)
    if failed:
        out.append(failure(chis[failed[0]], failed[1]))
    return out


def _kernels(data, g_w, activation):
    K, ks, kss = nngp_kernels(data.X, data.X_test, g_w, activation)
    return K, data.y, ks, kss


def _estimator(params, chi):
    est = params["estimator"]
    if est == "auto":
        return "cumulant" if chi / params["N"] <= CUMULANT_MAX_CHI_OVER_N else "mc"
    return est


def _nonlinear(data, params, chis, order, mc_samples):
    N, kappa, g_v, g_w = params["N"], params["kappa"], params["g_v"], params["g_w"]
    act = params["activation"]
    spec_phi = decompose(*_kernels(data, g_w, act))
    solvers = {}

    def solver(est):
        if est not in solvers:
            kw = {}
            if mc_samples:
                # mc_samples counts Monte Carlo draws: prior draws for the cumulant estimator; for
                # the single-neuron sampler ~300 recorded states per chain and replicate pass
                kw = ({"n_prior": int(mc_samples)} if est == "cumulant"
                      else {"n_chains": int(min(max(mc_samples // 300, 16), 512))})
            solvers[est] = _nl.NonlinearSaddle(data.X, data.y, data.X_test, N, kappa, g_v, g_w, act,
                                               order, estimator=est, seed=params["seed"], **kw)
        return solvers[est]

    out, C_prev, mc_state, chi_prev = [], None, None, None
    for chi in chis:
        est = _estimator(params, chi)
        try:
            st = solver(est).solve(chi, C_prev, mc_state=mc_state)
        except _nl.ConvergenceError as err:
            out.append(failure(chi, err))
            break
        if C_prev is not None:
            jump = np.linalg.norm(st.C - C_prev) / max(np.linalg.norm(C_prev), 1e-300)
            if jump > 0.5 and chi / chi_prev < 2:
                st.warnings.append(f"adapted kernel changed by {jump:.0%} from chi = {chi_prev:g}: "
                                   "possible branch jump")
        C_prev, mc_state, chi_prev = st.C, getattr(st, "mc_state", None), chi
        obs = {
            "estimator": est,
            "kernel_alignment": alignment_of(data.y, st.C),
            "kernel_alignment_nngp": alignment_of_spectrum(spec_phi),
            "kernel_top_eigenvalues": np.linalg.eigvalsh(st.C)[::-1][:5].tolist(),
            "fixed_point_iterations": st.iterations,
        }
        if st.acceptance is not None:
            obs["mala_acceptance"] = st.acceptance
        obs.update(effective_rescaling(spec_phi, st.predictions["train_mean"], kappa, g_v))
        extra = {"observables": obs,
                 "mc_error": {k: np.asarray(v).tolist() for k, v in st.mc_error.items()}}
        r = result("adaptive", order, params, chi, st.predictions, extra)
        r["warnings"] += st.warnings
        out.append(r)
    return out


def _kernel_field(data, params, chis):
    """Order 2 (THEORY §2c): the Wishart field's saddle (the P x P kernel field when P < D, else the
    D x D weight field), warm-started from the order-1 saddle and along the ladder, plus its
    first-order loop term (runtime.kernelfield)."""
    from .errors import InputError
    from .kernelfield import WishartField

    N, kappa, g_v, g_w = params["N"], params["kappa"], params["g_v"], params["g_w"]
    P, D = data.X.shape
    n, what = (P, "P") if P < D else (D, "D")
    if N <= n + 1:
        raise InputError(f"--order 2 needs N > {what} + 1 = {n + 1} (THEORY §2c: the "
                         f"{'kernel' if P < D else 'weight'} field is {n} x {n}); got N = {N}")
    K, kstar, kss = nngp_kernels(data.X, data.X_test, g_w, "linear")
    spec = decompose(K, data.y, kstar, kss)
    first = _lin.LinearSaddle(spec, N, kappa, g_v, 1)
    states, failed = _lin.ladder(first, chis)
    out, F_prev = [], None
    for st in states:
        pr1 = first.predictions(st)
        field = WishartField.for_data(data.X, data.y, N, st.chi, kappa, g_v, g_w)
        U = spec.U[:, first.mask]
        F0 = F_prev if F_prev is not None else field.start_from_kernel(U @ pr1["B"] @ U.T)
        try:
            F, iters = field.saddle(F0)
        except Exception as err:  # noqa: BLE001 - recorded as a failed ladder point
            out.append(failure(st.chi, err))
            return out
        F_prev = F
        beta1, beta0 = field.one_loop(F)
        m1, m0 = field.train_mean(beta1), field.train_mean(beta0)
        values = {"train_mean": m1, "test_mean": field.test_mean(beta1, data.X_test, kstar),
                  "test_var": pr1["test_var"]}
        evals, yCy = field.kernel_spectrum(F)
        obs = {
            "kernel_alignment": kernel_target_alignment(yCy, data.y @ data.y, np.linalg.norm(evals)),
            "kernel_alignment_nngp": alignment_of_spectrum(spec),
            "kernel_top_eigenvalues": evals[:5].tolist(),
            "loop_correction": float(np.max(np.abs(m1 - m0))),
            "field": f"{field.name} ({n} x {n})",
            "saddle_newton_iterations": iters,
            "test_var_source": "kernel adaptation order 1 (the Wishart-field loop corrects the means)",
        }
        r = result("adaptive", 2, params, st.chi, values, {"observables": obs})
        r["warnings"] += st.warnings
        out.append(r)
    if failed:
        out.append(failure(chis[failed[0]], failed[1]))
    return out
