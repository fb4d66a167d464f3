"""Sampled finite networks (docs/theory.md §7) against the exact posterior of linear networks
(docs/theory.md §2a); diagnostics and determinism. For erf and relu the sampler is checked against the
second, Rao-Blackwellised sampler in test_marginal_sampler.py."""
import warnings

import numpy as np
import pytest

from msat.runtime import params, spectral
from msat.runtime.methods import exact
from msat.runtime.numerics import chains as chain_stats, hmc
from msat.runtime import predict

pytestmark = pytest.mark.slow  # Monte Carlo: sampled networks


def _problem(P=8, D=12, P_test=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, D))
    y = np.tanh(X[:, 0] + 0.5 * X[:, 1])
    return X, y, rng.standard_normal((P_test, D))


def _mcse_of_variance(chains, kind):
    """MCSE of the posterior variance of each output: ArviZ MCSE of the squared deviations."""
    import arviz as az

    arr = np.stack([getattr(c, kind) for c in chains])
    dev2 = (arr - arr.reshape(-1, arr.shape[-1]).mean(axis=0)) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.mcse(az.convert_to_dataset({"x": dev2}), method="mean")["x"].values


def _compare_linear(P, D, N, samples, chains, chis, seed=1):
    X, y, Xt = _problem(P, D, seed=P)
    spec = spectral.spectrum(X, y, Xt, 1.0)
    rng = np.random.default_rng(seed)
    zs = []
    for chi in chis:
        ex = exact.moments(spec, N, chi, 0.5, 1.0)
        u_learned = X.T @ (y - ex["train_mean"])
        dirs = np.vstack([u_learned, rng.standard_normal((2, D))])
        dirs /= np.linalg.norm(dirs, axis=1)[:, None]
        ch = hmc.run_chains(X, y, Xt, N=N, chi=chi, kappa=0.5, samples=samples, chains=chains,
                            seed=seed, directions=dirs)
        s = chain_stats.summarise(ch, X, y, 0.5, 1.0)
        assert s["rhat_max"] < 1.01 and s["ess_min"] > 400, (chi, s["rhat_max"], s["ess_min"])
        zs += list((s["train_mean"] - ex["train_mean"]) / s["train_mean_mcse"])
        zs += list((s["test_mean"] - ex["test_mean"]) / s["test_mean_mcse"])
        zs += list((s["test_var"] - ex["test_var"]) / _mcse_of_variance(ch, "test"))
        d_mcse = chain_stats.diagnostics(ch, "dirs")["mcse"]
        d_mean = np.concatenate([c.dirs for c in ch]).mean(axis=0)
        for k, u in enumerate(dirs):
            z = exact.direction_modes(spec, X, u, 1.0)[0]
            ex_dir = exact.moments(spec, N, chi, 0.5, 1.0, weight_direction=(z, 1.0, D))["weight_cov_direction"]
            zs.append((d_mean[k] - 1.0 / D - ex_dir) / d_mcse[k])
    return np.array(zs)


def test_linear_network_matches_exact_posterior():
    """P = 8, D = 12, N = 20, chi in {1, sqrt(N), N}: every mean, test variance and directional
    hidden-weight moment within 4 MCSE of the exact 1-D integral."""
    N = 20
    z = _compare_linear(8, 12, N, samples=1500, chains=4, chis=[1.0, np.sqrt(N), float(N)])
    assert np.all(np.abs(z) < 4), z
    assert 0.5 < np.sqrt(np.mean(z**2)) < 1.6  # z-scores look like standard normals


@pytest.mark.slow
def test_linear_network_matches_exact_posterior_larger():
    N = 100
    z = _compare_linear(50, 60, N, samples=2000, chains=4, chis=[1.0, np.sqrt(N), float(N)])
    assert np.all(np.abs(z) < 4.5), z


def test_same_seed_same_samples_and_seed_matters():
    X, y, Xt = _problem()
    a = hmc.run_chains(X, y, Xt, N=10, chi=3.0, kappa=0.5, samples=50, chains=2, seed=5, warmup=60)
    b = hmc.run_chains(X, y, Xt, N=10, chi=3.0, kappa=0.5, samples=50, chains=2, seed=5, warmup=60,
                       processes=1)
    c = hmc.run_chains(X, y, Xt, N=10, chi=3.0, kappa=0.5, samples=50, chains=2, seed=6, warmup=60)
    for x, z in zip(a, b):
        np.testing.assert_array_equal(x.train, z.train)
    assert not np.array_equal(a[0].train, c[0].train)


def test_short_runs_are_flagged():
    X, y, Xt = _problem()
    r = predict(X, y, Xt, N=10, chi=1.0, kappa=0.5, method="sample", samples=30, chains=2, seed=0)
    assert r["ess_min"] < 400
    assert any("ESS" in w for w in r["warnings"])
    for k in ("train_mean_mcse", "test_mean_mcse", "rhat_max", "ess_min", "train_var"):
        assert k in r


def test_cli_sample_writes_draws(tmp_path, capsys):
    from msat.runtime.app import console
    import json

    out, draws = tmp_path / "s.json", tmp_path / "d.npz"
    code = console.main(["sample", "--dataset", "teacher", "--P", "6", "--D", "4", "--P-test", "2", "--N", "10",
                     "--chi", "1,10", "--kappa", "0.5", "--samples", "400", "--chains", "2", "--seed", "3",
                     "--json", str(out), "--draws", str(draws)])
    assert code == 0
    rs = json.loads(out.read_text())
    assert [r["method"] for r in rs] == ["sample", "sample"] and rs[0]["order"] is None
    d = np.load(draws)
    assert d["chi0_train"].shape == (2, 400, 6) and d["chi1_test"].shape == (2, 400, 2)


def test_an_output_constant_over_every_draw_has_undefined_diagnostics_and_no_stderr_noise():
    """The output at a zero input under relu is 0 in every draw: its R-hat and ESS are undefined (NaN, null in the
    JSON) while a varying output's are finite, and ArviZ's 0/0 RuntimeWarnings do not reach the user."""
    from types import SimpleNamespace

    rng = np.random.default_rng(0)
    draws = np.stack([rng.standard_normal((200, 2)) for _ in range(2)])
    draws[:, :, 1] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = chain_stats.diagnostics([SimpleNamespace(out=c) for c in draws], "out")
    assert np.isfinite(d["rhat"][0]) and np.isnan(d["rhat"][1])


def test_an_output_constant_in_each_chain_at_different_values_has_infinite_r_hat():
    """relu, N = 1: an output frozen at 0 in chains with w > 0 and at another constant in a chain elsewhere had
    R-hat NaN, which rhat_max skipped (an outside audit): the chains disagree, R-hat is infinite, and the point
    fails the R-hat rule; frozen at one value in every chain it stays undefined."""
    from types import SimpleNamespace

    rng = np.random.default_rng(0)
    draws = np.stack([rng.standard_normal((300, 3)) for _ in range(4)])
    draws[:, :, 1] = 0.0
    draws[:, :, 2] = 0.0
    draws[3, :, 2] = 0.7
    chains = [SimpleNamespace(train=c, accept=np.ones(10)) for c in draws]
    d = chain_stats.diagnostics(chains, "train")
    assert np.isfinite(d["rhat"][0]) and np.isnan(d["rhat"][1]) and d["rhat"][2] == np.inf
    assert chain_stats._checks(chains, d, None)[0] == np.inf
    apart = [SimpleNamespace(train=c[:, 2:], accept=np.ones(10)) for c in draws]  # every output apart: still inf
    rhat_max, _, _, said = chain_stats._checks(apart, chain_stats.diagnostics(apart, "train"), None)
    assert rhat_max == np.inf and not any("no output varies" in w for w in said), said


def test_a_missed_mode_is_warned_of_where_r_hat_cannot_see_it():
    """An outside audit's case: relu, N = 1, D = 1, mirror-symmetric data, kappa = 0.03: two equal modes (w > 0
    fits x > 0, w < 0 fits x < 0; quadrature: test means 0.404, 0.404). With seed 3 all four chains sit in one
    mode: R-hat 1.004, converged, test means 0.80 and 0 with MCSE 0 on the second. R-hat cannot see that; the
    result now says so twice: a layer of few units, and outputs at nonzero inputs that never varied."""
    X, y, Xt = np.array([[-1.2], [-0.6], [0.6], [1.2]]), np.array([1.0, 0.5, 0.5, 1.0]), np.array([[-1.0], [1.0]])
    r = predict(X, y, Xt, N=1, chi=1.0, kappa=0.03, activation="relu", method="sample", samples=1000, chains=4,
                seed=3)
    assert r.converged and np.min(r.test_mean_mcse) == 0  # the precondition: every chain in one mode
    assert any(w.startswith("sample: with 1 hidden unit(s) in a layer") for w in r.warnings), r.warnings
    frozen = int(np.sum(np.asarray(r.train_mean_mcse) == 0) + np.sum(np.asarray(r.test_mean_mcse) == 0))
    assert any(w.startswith(f"sample: {frozen} output(s) at nonzero inputs did not vary") for w in r.warnings)
    wide = predict(X, y, Xt, N=5, chi=1.0, kappa=0.3, activation="relu", method="sample", samples=200, chains=2,
                   seed=0)
    assert not any("hidden unit(s) in a layer" in w for w in wide.warnings), wide.warnings
    # a linear network's outputs at y = 0 never vary under the marginal readout: no mode is missed there
    flat = predict(X, 0 * y, Xt, N=2, chi=1.0, kappa=0.3, method="sample", readout="marginal", samples=200, chains=2,
                   seed=0)
    assert not any("did not vary" in w or "hidden unit" in w for w in flat.warnings), flat.warnings


def test_a_narrow_nonlinear_layer_samples_sixteen_chains_by_default():
    """An outside audit's case (quadrature over all weights: test means -1.989, 0.174, 2.568): erf, N = chi = 2,
    D = 1, kappa = 0.02, targets x 3. With four chains, seeds 0 and 2 sit in a mode of a tenth of the mass,
    converged (R-hat 1.007, 1.014 at 300 draws), test means 0.45 off at MCSE 5e-4; sixteen chains, the default
    for a non-linear layer of at most 4 units now, reach the other mode and the point is not converged."""
    X, Xt = np.array([[-1.5], [-0.5], [0.7], [1.4]]), np.array([[-1.0], [0.3], [2.0]])
    y = 3 * np.array([-1.0, 0.2, 0.9, 0.6])
    kw = dict(N=2, chi=2.0, kappa=0.02, activation="erf", samples=300)
    for seed in (0, 2):
        four = predict(X, y, Xt, method="sample", chains=4, seed=seed, **kw)
        assert four.converged and abs(four.test_mean[1] - 0.174) > 0.3  # the precondition: the silent miss
        default = predict(X, y, Xt, method="sample", seed=seed, **kw)
        assert default.params["chains"] == 16 and not default.converged and default.rhat_max > 1.2
    wide = params.build(4, 1, 3, N=5, kappa=0.1, activation="erf", method="sample")
    linear = params.build(4, 1, 3, N=2, kappa=0.1, method="sample")
    assert wide.chains == linear.chains == 4


def test_the_mcse_of_a_combination_of_means_keeps_their_correlations():
    """chains.projection_mcse: iid draws f ~ N(0, S) with strongly correlated outputs; the MCSE of the mean of
    v . f is sqrt(v^T S v / n) (closed form), which summing the outputs' own MCSEs as independent
    understates by a factor of about two here."""
    from types import SimpleNamespace

    from msat.runtime.numerics import chains

    rng = np.random.default_rng(3)
    n, k = 4000, 5
    S = 0.2 * np.eye(k) + 0.8  # unit variances, correlation 0.8
    L = np.linalg.cholesky(S)
    draws = [SimpleNamespace(train=rng.standard_normal((n, k)) @ L.T) for _ in range(4)]
    v = np.full(k, 1.0 / k)
    exact = np.sqrt(v @ S @ v / (4 * n))
    got = chains.projection_mcse(draws, "train", v)
    assert abs(got / exact - 1) < 0.1, (got, exact)
    independent = np.sqrt(np.sum((v * chains.diagnostics(draws, "train")["mcse"]) ** 2))
    assert independent < 0.6 * exact


def test_chains_that_disagree_warn_by_r_hat_alone():
    """Chains whose means differ (as in a posterior with modes the chains do not cross) but whose ESS is
    ample: the warning must come from R-hat (no test held it; only the ESS half of the rule was exercised)."""
    from types import SimpleNamespace

    rng = np.random.default_rng(1)
    offsets = 0.2 * rng.standard_normal(32)
    chains = [SimpleNamespace(train=rng.standard_normal((2000, 1)) + o, accept=np.ones(10)) for o in offsets]
    d = chain_stats.diagnostics(chains, "train")
    assert d["ess_bulk"].min() > 2 * chain_stats.ESS_MIN and d["rhat"].max() > chain_stats.RHAT_MAX
    rhat_max, ess_min, _, said = chain_stats._checks(chains, d, None)
    assert len(said) == 1 and f"R-hat max {rhat_max:.4f}" in said[0], said


def test_reported_test_variance_mcse_is_honest_over_seeds():
    """The sampler's own test_var_mcse (not one recomputed here) against the exact posterior's variance over
    16 seeds at chi = 1 and N: z-scores with RMS near 1. A variance MCSE sqrt(2) too small passed every test."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((8, 12))
    y, Xt = np.sign(X[:, 0] + 0.3), rng.standard_normal((4, 12))
    spec = spectral.spectrum(X, y, Xt, 1.0)
    z = []
    for chi in (1.0, 20.0):
        ex = exact.moments(spec, 20, chi, 0.5, 1.0)
        for seed in range(16):
            s = chain_stats.summarise(hmc.run_chains(X, y, Xt, N=20, chi=chi, kappa=0.5, samples=600, chains=4,
                                                     seed=seed), X, y, 0.5, 1.0)
            z += list((s["test_var"] - ex["test_var"]) / s["test_var_mcse"])
    rms = float(np.sqrt(np.mean(np.square(z))))
    assert 0.7 < rms < 1.25 and np.max(np.abs(z)) < 4.5, (rms, np.max(np.abs(z)))


def test_chains_that_disagree_are_not_converged_and_say_so(tmp_path, capsys):
    """Inputs scaled by 1e3 make the sampled readout's posterior stiff: the chains disagree (R-hat over
    RHAT_FAIL) and their test variances sit 40% under the exact posterior's, several reported MCSEs off. Such
    a point keeps its values but is not converged (error, exit 3 with one line); integrating the readout out
    (--readout marginal) mixes, and that result is converged and agrees with the exact integral."""
    import json

    from tests_support import run_cli

    rng = np.random.default_rng(0)
    X, y, Xt = 1e3 * rng.standard_normal((6, 8)), rng.standard_normal(6), 1e3 * rng.standard_normal((2, 8))
    data = tmp_path / "big.npz"
    np.savez(data, X=X, y=y, X_test=Xt)
    out = tmp_path / "s.json"
    args = ["sample", "--data", data, "--N", "10", "--chi", "1", "--kappa", "0.3", "--samples", "2000"]
    code, _, err = run_cli(args + ["--json", out], capsys)
    r = json.loads(out.read_text())
    assert code == 3 and r["converged"] is False and r["rhat_max"] > chain_stats.RHAT_FAIL
    assert "chains disagree" in r["error"] and len(r["test_var"]) == 2 and "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("msat: solver did not converge")]
    ex = exact.moments(spectral.spectrum(X, y, Xt, 1.0), 10, 1.0, 0.3, 1.0)
    assert np.all(np.array(r["test_var"]) < 0.8 * ex["test_var"])  # what the flag is for
    code, _, _ = run_cli(args + ["--readout", "marginal", "--json", out], capsys)
    m = json.loads(out.read_text())
    assert code == 0 and m["converged"] is True and m["rhat_max"] < chain_stats.RHAT_FAIL
    z = (np.array(m["test_mean"]) - ex["test_mean"]) / np.array(m["test_mean_mcse"])
    assert np.max(np.abs(z)) < 4, z
