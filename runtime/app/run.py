"""The main job, `msat run`: the paper's headline comparison on the built-in Ising task.

From standard (chi = 1) to mean-field (chi = N) scaling, every method on one chi ladder:
NNGP, loop orders (tree level, dressed one to three loops) and the exact 1-D integral for linear
networks, kernel adaptation (orders 0, 1) and sampled finite networks (HMC); with ``depth`` L > 1
the same for a linear network of L hidden layers of width N (docs/theory.md §2d). Writes
fig_discrepancy.png, fig_orders.png, fig_features.png, results.json, results.csv and summary.txt, prints a
summary table, and checks docs/theory.md §9's four statements on its own numbers (PASS/FAIL; a FAIL
exits non-zero).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import data as _data
from .. import spectral, values
from ..errors import ConvergenceError, InputError, missing_generated
from ..methods import exact
from msat.generated import observables as gen_observables

from ..numerics import chains, deep_hmc, hmc, marginal_hmc
from ..numerics.observe import alignment_of_spectrum
from ..predict import predict, quiet
from ..progress import Progress
from . import checks, report, studies


@dataclass
class Config:
    P: int
    D: int
    P_test: int
    N: int
    n_chi: int
    samples: int
    chains: int
    orders_P: int
    orders_D: int
    orders_Ns: list
    statement2_Ns: list
    statement3_Ns: list
    kappa: float = 0.5
    g_v: float = 1.0
    g_w: float = 1.0
    seed: int = 0
    mc_samples: int = 40000
    chis: list = field(default_factory=list)

    def __post_init__(self):
        self.chis = [float(c) for c in np.geomspace(1.0, self.N, self.n_chi)]


# P/N = 0.1: the kernel-adaptation saddle is accurate to O(P/N) (docs/theory.md §2b), so statement 1 can be
# checked against sampled networks at every chi including chi = 1
QUICK = Config(P=12, D=24, P_test=24, N=120, n_chi=5, samples=600, chains=2, orders_P=16, orders_D=24,
               orders_Ns=[50, 100, 200, 400, 800], statement2_Ns=[20, 40, 80, 160],
               statement3_Ns=[50, 100, 200, 400], mc_samples=20000)
FULL = Config(P=32, D=48, P_test=64, N=320, n_chi=9, samples=2000, chains=4, orders_P=40, orders_D=60,
              orders_Ns=[100, 200, 400, 800, 1600], statement2_Ns=[40, 80, 160, 320, 640],
              statement3_Ns=[100, 200, 400, 800, 1600], mc_samples=60000)


def _rms(v):
    v = np.asarray(v, dtype=float)
    return float(np.sqrt(np.mean(v * v))) if v.size else float("nan")


def _disc(y, m, mcse=None):
    """RMS discrepancy r = sqrt(mean (y - m)^2) and, given the means' MCSEs e, a bound on its MCSE by the delta
    method, sum |d_i| e_i / (n r): the points' errors taken as fully correlated (only per-point errors known)."""
    d = np.asarray(y) - np.asarray(m)
    r = _rms(d)
    if mcse is None:
        return r, None
    return r, float(np.sum(np.abs(d) * np.asarray(mcse)) / (len(d) * max(r, 1e-300)))


def _disc_draws(y, chains_list, part):
    """RMS discrepancy of the sampled posterior mean and its MCSE by the delta method, as the MCSE of the
    per-draw projection d . f / (n r), which keeps the correlations between the points' errors (they share draws;
    summed as independent they understated it)."""
    m = np.concatenate([getattr(c, part) for c in chains_list]).mean(axis=0)
    d = np.asarray(y) - m
    r = _rms(d)
    return r, chains.projection_mcse(chains_list, part, -d / (len(d) * max(r, 1e-300)))


NAN = float("nan")


def _padded(results, n):
    """One entry per chi: the converged results, None where the ladder failed (relu near mean-field
    scaling has no kernel-adaptation saddle, docs/theory.md §6) or stopped."""
    out = [r if r["converged"] else None for r in results[:n]]
    return out + [None] * (n - len(out))


def _marginal_rows(cfg, X, y, Xt, yt, chis, activation, bar):
    """Discrepancies of networks sampled with the readout integrated out, per chi."""
    rows = {k: [] for k in ("disc_train", "disc_train_err", "disc_test", "disc_test_err", "rhat_max")}
    for j, chi in enumerate(chis):
        bar.step(f"sampling chi = {chi:.3g} (readout integrated out)")
        ch = marginal_hmc.run_chains(X, y, Xt, N=cfg.N, chi=chi, kappa=cfg.kappa, g_v=cfg.g_v, g_w=cfg.g_w,
                                     activation=activation, samples=cfg.samples, chains=cfg.chains,
                                     seed=cfg.seed + 100 + j)
        s = chains.summarise_marginal(ch)
        for part, target in (("train", y), ("test", yt)):
            d, e = _disc_draws(target, ch, part)
            rows[f"disc_{part}"].append(d)
            rows[f"disc_{part}_err"].append(e)
        rows["rhat_max"].append(s["rhat_max"])
    return rows


def compute(cfg: Config, activation: str, progress=True, depth: int = 1) -> dict:
    """Every number of the figures, as plain lists."""
    linear = activation == "linear"
    ds = _data.builtin("ising", P=cfg.P, D=cfg.D, P_test=cfg.P_test, seed=cfg.seed)
    X, y, Xt, yt = ds.X, ds.y, ds.X_test, ds.y_test
    chis, N, kappa = cfg.chis, cfg.N, cfg.kappa
    methods = (["nngp", "exact", "loop_o0", "loop_o1", "loop_o2", "loop_o3", "adaptive_o0", "adaptive_o1",
                "adaptive_o2"]
               if linear else ["nngp", "adaptive_o0", "adaptive_o1", "adaptive_o2"])
    if depth > 1:  # the kernel field's own loop (order 2) is a one-layer method
        methods.remove("adaptive_o2")
    # statement 3 runs on the linear network for every activation (an erf run's bar ended at 32 of 28)
    n_tasks = (len(methods) + len(chis) * (1 if linear else 2) + 2 * len(cfg.orders_Ns) + len(cfg.statement2_Ns)
               + len(cfg.statement3_Ns))
    bar = Progress(n_tasks, progress, "[bold]msat run[/bold]")
    rows, raw, failures, notes = {}, {}, {}, {}
    common = dict(N=N, depth=depth, chi=chis, kappa=kappa, g_v=cfg.g_v, g_w=cfg.g_w, activation=activation)
    for m in methods:
        bar.step(m)
        if m.startswith("loop"):
            L = int(m[-1])
            res = predict(X, y, Xt, method="loop", order=L, dressed=L > 0, **common)
        elif m.startswith("adaptive"):
            res = predict(X, y, Xt, method="adaptive", order=int(m[-1]), mc_samples=None if linear else cfg.mc_samples,
                          seed=cfg.seed, **common)
        else:
            res = predict(X, y, Xt, method=m, **common)
        errors = {j: r["error"] for j, r in enumerate(res) if not r["converged"]}
        said = {f"{chis[j]:.6g}": list(r["warnings"]) for j, r in enumerate(res) if r.get("warnings")}
        if said:  # predict's warnings, per chi of the ladder
            notes[m] = said
        raw[m] = res = _padded(res, len(chis))
        rows[m] = {"disc_train": [_disc(y, r["train_mean"])[0] if r else NAN for r in res],
                   "disc_test": [_disc(yt, r["test_mean"])[0] if r else NAN for r in res]}
        if any(r and r.get("train_mean_mcse") for r in res):  # a Monte Carlo theory: its discrepancies' MCSE
            for part, target in (("train", y), ("test", yt)):
                rows[m][f"disc_{part}_err"] = [_disc(target, r[part + "_mean"], r[part + "_mean_mcse"])[1]
                                               if r else NAN for r in res]
        if errors:  # why the ladder stopped (the points after a failure are not attempted)
            failures[m] = {f"{chis[j]:.6g}": e for j, e in errors.items()}
    if linear:  # each method's largest distance from the exact posterior's train and test means, per chi: the RMS
        # discrepancies alone cannot see means at the wrong points (an outside audit: loop order 1's test means
        # permuted among points of one label passed statement 1)
        for m in methods:
            rows[m]["dev_exact"] = [studies.max_deviation(r, x) for r, x in zip(raw[m], raw["exact"])]
    g_ws = [cfg.g_w] * depth
    spec_phi = spectral.spectrum(X, y, Xt, tuple(g_ws), activation)  # the depth-L NNGP kernel
    rows["nngp"]["alignment"] = [alignment_of_spectrum(spec_phi)] * len(chis)
    theory = raw["adaptive_o1"]
    rows["adaptive_o1"]["alignment"] = [r["observables"]["kernel_alignment"] if r else NAN for r in theory]
    if linear:
        rows["adaptive_o1"]["omega"] = [r["observables"]["weight_cov_direction"] for r in theory]
    if linear:  # the exact first-layer weight moment, from the integral over the total rescaling (§2a, §2d)
        rows["exact"]["omega"] = []
    spec = spectral.spectrum(X, y, Xt, tuple(g_ws))
    samp = {k: [] for k in ("disc_train", "disc_train_err", "disc_test", "disc_test_err", "alignment",
                            "alignment_err", "omega", "omega_err", "rhat_max", "ess_min")}
    for j, chi in enumerate(chis):
        bar.step(f"sampling chi = {chi:.3g}")
        # the theory's learned direction (the NNGP's where the theory has no saddle, relu near mean field)
        u = chains.learned_direction(X, y, (theory[j] or raw["nngp"][j])["train_mean"], kappa)
        sampling = dict(chi=chi, kappa=kappa, g_v=cfg.g_v, activation=activation, samples=cfg.samples,
                        chains=cfg.chains, seed=cfg.seed + j, directions=u[None, :])
        if depth > 1:
            ch = deep_hmc.run_chains(X, y, Xt, widths=[N] * depth, g_ws=[cfg.g_w] * depth, **sampling)
        else:
            ch = hmc.run_chains(X, y, Xt, N=N, g_w=cfg.g_w, **sampling)
        s = chains.summarise(ch, X, y, kappa, cfg.g_w)
        dt, et = _disc_draws(y, ch, "train")
        dv, ev = _disc_draws(yt, ch, "test")
        dirs = chains.diagnostics(ch, "dirs")
        al = chains.diagnostics(ch, "align")
        samp["disc_train"].append(dt)
        samp["disc_train_err"].append(et)
        samp["disc_test"].append(dv)
        samp["disc_test_err"].append(ev)
        samp["alignment"].append(s["observables"]["kernel_alignment"])
        samp["alignment_err"].append(float(al["mcse"][0]))
        quad = float(np.concatenate([c.dirs for c in ch]).mean())
        samp["omega"].append(float(gen_observables.weight_cov_excess(quad, cfg.D, cfg.g_w)))
        samp["omega_err"].append(float(dirs["mcse"][0]))
        samp["rhat_max"].append(s["rhat_max"])
        samp["ess_min"].append(s["ess_min"])
        if linear:
            direction = exact.direction_modes(spec, X, u, cfg.g_w)
            try:  # a point the integral does not resolve is NaN (statement 4 then fails), not a lost run
                rows["exact"]["omega"].append((
                    exact.moments(spec, N, chi, kappa, cfg.g_v, weight_direction=direction) if depth == 1 else
                    exact.deep_moments(spec, [N] * depth, chi, kappa, cfg.g_v, weight_direction=direction,
                                       g_ws=g_ws))["weight_cov_direction"])
            except ConvergenceError:
                rows["exact"]["omega"].append(NAN)
    rows["sample"] = samp
    if not linear:  # the second ground truth (docs/theory.md §7): hidden weights only, Rao-Blackwellised
        rows["sample_marginal"] = _marginal_rows(cfg, X, y, Xt, yt, chis, activation, bar)
    # statement 1's theory (docs/theory.md §9): the most accurate one the run has, order 2 for erf
    judged = raw["adaptive_o2"] if not linear and "adaptive_o2" in raw else theory
    out = {"activation": activation, "depth": depth, "config": asdict(cfg), "chis": chis, "rows": rows,
           "failures": failures, "warnings": notes,
           "adaptive_mc_error": {k: [float(np.max(r.get("mc_error", {}).get(k, [0.0]) or [0.0])) if r else NAN
                                     for r in judged] for k in ("train_mean", "test_mean")},
           "predict_points": [{"method": "exact" if linear else "adaptive", "order": None if linear else 1,
                               "chi": chis[i], "test_mean": raw["exact" if linear else "adaptive_o1"][i]["test_mean"]}
                              for i in (0, len(chis) - 1) if raw["exact" if linear else "adaptive_o1"][i]]}
    # the loop expansion and its exact reference exist for the linear network only: fig_orders
    # shows the linear network whatever the activation of the ladder
    out["orders"] = studies.orders(cfg, bar, depth)
    out["orders"]["statement2"] = studies.statement2(cfg, bar, depth)
    out["statement3"] = studies.statement3(cfg, bar, raw if linear else None, depth)  # a linear network's
    bar.close()
    return out


def run(out="msat-run", *, quick=False, activation="linear", depth=1, progress=False, console=None) -> dict:
    """The main job (`msat run` in docs/cli.md): compute, check docs/theory.md §9's statements,
    write the figures, results.json, results.csv and summary.txt into ``out``, print the summary. Returns the
    results (``res["checks"]`` holds the PASS/FAIL of each statement)."""
    from rich.console import Console

    from . import plots

    activation = values.choice("activation", activation, ("linear", "erf", "relu"))
    depth = values.positive("depth", depth, integer=True)  # 2.0 is 2, as predict reads it
    quick = values.flag("quick", quick)
    progress = "lines" if progress == "lines" else values.flag("progress", progress)  # "lines": one per step
    if not str(out).strip():
        raise InputError("the output folder (--out) is empty: name a folder")
    if depth > 1 and activation != "linear":
        raise InputError("depth > 1 needs activation linear in `msat run` (its figures at depth compare the exact "
                         "integral and the loop orders, which are for linear networks); erf and relu at depth run "
                         "with msat predict --method adaptive or sample")
    if depth > 1:  # its loop orders 0..3 at this depth, before the output folder is made
        from msat import generated

        try:
            generated.deep(depth, 3)
        except (ValueError, ImportError) as err:
            raise InputError(missing_generated(err) or str(err).splitlines()[0]) from None
    console = console or Console()
    t0 = time.perf_counter()
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # an audit: "File exists" where a file of the folder's name was there
        why = "a file of that name is there" if out.exists() and not out.is_dir() else err.strerror
        raise InputError(f"cannot create the folder {out}: {why}") from None
    cfg = QUICK if quick else FULL
    with quiet():  # the results' warnings are counted in the summary and kept in results.json
        res = compute(cfg, activation, progress, depth)
    res["checks"] = checks.checks(res)
    chis = res["chis"]
    layers = f"{depth} hidden layers of " if depth > 1 else ""
    title = (f"Ising task, {activation} network, P = {cfg.P}, D = {cfg.D}, {layers}N = {cfg.N}, "
             f"kappa = {cfg.kappa}")
    plots.discrepancy(out / "fig_discrepancy.png", chis, res["rows"], title)
    plots.orders(out / "fig_orders.png", res["orders"], "Loop expansion vs exact, linear network"
                 + (f" of {depth} hidden layers" if depth > 1 else "") + " (Ising task)")
    plots.features(out / "fig_features.png", chis, res["rows"], res.get("statement3"), title)
    res["seconds"] = time.perf_counter() - t0
    report.write_json(out / "results.json", res)
    report.write_csv(out / "results.csv", res)
    report.summary(console, res, quick, out)
    return res
