"""Sampled deep networks (docs/theory.md §2d, §7): HMC over all weights of networks with two and
three hidden layers against the exact one-variable posterior of deep linear networks (train and
test means, test variances), the NNGP far off at mean-field scaling; the CLI and result contract."""
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from msat.runtime import predict
from msat.runtime.numerics import chains as chain_stats, deep_hmc

pytestmark = pytest.mark.slow  # Monte Carlo: sampled networks


def _problem(P=6, D=8, P_test=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, D))
    return X, np.sign(X[:, 0] + 0.3), rng.standard_normal((P_test, D))


def _mcse_of_variance(chains, exact_mean):
    """MCSE of E[(f - m)^2] with m the exact posterior mean: ArviZ MCSE of the squared deviations."""
    import arviz as az

    dev2 = (np.stack([c.test for c in chains]) - exact_mean) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dev2.reshape(-1, dev2.shape[-1]).mean(axis=0), \
            az.mcse(az.convert_to_dataset({"x": dev2}), method="mean")["x"].values


@pytest.mark.parametrize("widths, g_ws", [([10, 12], [1.0, 1.0]), ([8, 9, 10], [1.2, 0.8, 1.0])])
def test_deep_linear_network_matches_exact_posterior(widths, g_ws):
    X, y, Xt = _problem()
    kappa = 0.3
    zs, nngp_z = [], []
    for chi in (1.0, float(widths[-1])):
        ex = predict(X, y, Xt, widths=widths, g_w=g_ws, chi=chi, kappa=kappa, method="exact")
        nn = predict(X, y, Xt, widths=widths, g_w=g_ws, chi=chi, kappa=kappa, method="nngp")
        ch = deep_hmc.run_chains(X, y, Xt, widths=widths, g_ws=g_ws, chi=chi, kappa=kappa, samples=2500,
                                 chains=4, seed=len(widths))
        s = chain_stats.summarise(ch, X, y, kappa, g_ws[0])
        assert s["rhat_max"] < 1.01 and s["ess_min"] > 400, (chi, s["rhat_max"], s["ess_min"])
        zs += list((s["train_mean"] - ex["train_mean"]) / s["train_mean_mcse"])
        zs += list((s["test_mean"] - ex["test_mean"]) / s["test_mean_mcse"])
        second, mcse = _mcse_of_variance(ch, np.asarray(ex["test_mean"]))
        zs += list((second - np.asarray(ex["test_var"])) / mcse)
        nngp_z += list((s["test_mean"] - nn["test_mean"]) / s["test_mean_mcse"])
    zs = np.array(zs)
    assert np.max(np.abs(zs)) < 4, zs
    assert 0.4 < np.sqrt(np.mean(zs**2)) < 1.6, zs
    assert np.max(np.abs(nngp_z)) > 10, nngp_z  # at chi = N_L the NNGP misses the networks


@pytest.mark.parametrize("widths, g_ws", [([6, 30], [1.0, 1.0]), ([8, 12, 10], [0.7, 1.3, 1.2])])
def test_first_layer_weight_moment_matches_sampled_networks(widths, g_ws):
    """The exact first-layer moment u^T (1/N_1) E[W_1^T W_1] u - g_1/D of a deep linear network (given the
    total rescaling, a one-layer model whose readout carries the layers above; docs/theory.md §2a, §2d)
    against HMC over all weights, along the learned direction, at chi = 1 and chi = N_L."""
    from msat.runtime import spectral
    from msat.runtime.methods import exact

    X, y, Xt = _problem(D=4, seed=3)
    u = X.T @ y / np.linalg.norm(X.T @ y)
    spec = spectral.spectrum(X, y, Xt, tuple(g_ws))
    zs, moments = [], []
    for chi in (1.0, float(widths[-1])):
        direction = exact.direction_modes(spec, X, u, g_ws[0])
        om = exact.deep_moments(spec, widths, chi, 0.5, 1.0, weight_direction=direction,
                                g_ws=g_ws)["weight_cov_direction"]
        ch = deep_hmc.run_chains(X, y, Xt, widths=widths, g_ws=g_ws, chi=chi, kappa=0.5, samples=3000, chains=4,
                                 seed=7, directions=u[None, :])
        sampled = np.concatenate([c.dirs for c in ch]).mean() - g_ws[0] / X.shape[1]
        zs.append((sampled - om) / chain_stats.diagnostics(ch, "dirs")["mcse"][0])
        moments.append(om)
    assert np.max(np.abs(zs)) < 4, zs
    assert moments[1] > 10 * abs(moments[0])  # mean-field scaling: an O(1) moment, not the O(1/N) of chi = 1


def test_deep_sample_cli_and_contract(tmp_path):
    out = subprocess.run([sys.executable, "-m", "msat.runtime.app.console", "sample", "--dataset", "teacher",
                          "--P", "6", "--D", "5", "--P-test", "2", "--widths", "5,6", "--chi", "2",
                          "--kappa", "0.4", "--samples", "300", "--chains", "2", "--activation", "erf",
                          "--draws", str(tmp_path / "draws.npz")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["params"]["widths"] == [5, 6] and r["params"]["depth"] == 2
    assert len(r["test_mean"]) == len(r["test_mean_mcse"]) == 2
    layers = r["observables"]["layers"]
    assert len(layers) == 2 and r["observables"]["kernel_alignment"] == layers[-1]["kernel_alignment"]
    assert np.load(tmp_path / "draws.npz")["chi0_test"].shape == (2, 300, 2)
