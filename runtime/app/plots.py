"""Figures of the main job (`msat run`), matplotlib with the Agg backend.

Each function takes the plain numbers that results.json holds and writes one PNG (or, with
path None, returns the open Figure, which is how tests read back what a figure shows).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

#: the exact reference's accuracy (relative quadrature tolerance): loop errors below it are not resolved
RESOLVED = 1e-13
STYLE = {
    "nngp": dict(color="0.45", ls="--", marker=None, label="NNGP (infinite width)"),
    "exact": dict(color="k", ls="-", marker=None, lw=3.0, alpha=0.45, zorder=5, label="exact (1-D integral)"),
    "loop_o0": dict(color="tab:orange", ls=":", marker=None, label="tree level (loop order 0)"),
    "loop_o1": dict(color="tab:blue", ls="-", marker=None, label="one loop (dressed)"),
    "loop_o2": dict(color="tab:cyan", ls="-.", marker=None, label="two loops (dressed)"),
    "loop_o3": dict(color="tab:purple", ls=(0, (1, 1)), marker=None, label="three loops (dressed)"),
    "adaptive_o0": dict(color="tab:green", ls=":", marker=None, label="kernel adaptation, tree"),
    "adaptive_o1": dict(color="tab:green", ls="-", marker=None, label="kernel adaptation, one loop"),
    "adaptive_o2": dict(color="darkgreen", ls="--", marker=None, label="kernel field loop (order 2)"),
    "sample": dict(color="tab:red", ls="none", marker="o", label="sampled networks (HMC, ±MCSE)"),
    "sample_marginal": dict(color="tab:brown", ls="none", marker="s", mfc="none",
                            label="sampled, readout integrated out (±MCSE)"),
}


def _save(fig, path):
    """Write the figure; return it (open) when ``path`` is None, for inspection."""
    if path is None:
        return fig
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return None


def _label(ax, xlabel, ylabel, title, legend=7, which="major"):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which=which)
    if legend:
        ax.legend(fontsize=legend)


def _series(ax, chis, rows, key, err_key=None):
    for method, style in STYLE.items():
        if method not in rows or not rows[method].get(key):
            continue
        vals = np.array(rows[method][key], dtype=float)
        if err_key and rows[method].get(err_key):  # Monte Carlo numbers (samplers, non-linear theory): MCSE bars
            err = np.array(rows[method][err_key], dtype=float)
            ax.errorbar(chis, vals, yerr=err, capsize=3, ms=5, **style)
        else:
            ax.plot(chis, vals, **style)


def discrepancy(path, chis, rows, title):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
    for ax, (key, name) in zip(axes, (("disc_train", "train"), ("disc_test", "test"))):
        _series(ax, chis, rows, key, key + "_err")
        ax.set_xscale("log")
        ax.set_xlabel(r"scaling parameter $\chi$  (1: standard, N: mean field)")
        ax.set_ylabel(f"mean {name} discrepancy  RMS$(y - \\langle f\\rangle)$")
        ax.set_title(f"{name} discrepancy")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(title)
    return _save(fig, path)


def orders(path, orders_data, title):
    """Loop-order errors vs N (chi = 1, chi = N) with N^-(L+1) guides, plus statement 2."""
    panels = [k for k in ("chi=1", "chi=N") if k in orders_data["errors"]]
    n = len(panels) + (1 if orders_data.get("statement2") else 0)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.3), constrained_layout=True)
    axes = np.atleast_1d(axes)
    Ns = np.array(orders_data["Ns"], dtype=float)
    colors = ["tab:orange", "tab:blue", "tab:cyan", "tab:purple", "tab:brown"]
    for ax, regime in zip(axes, panels):
        for variant, ls in (("bare", "-"), ("dressed", "--")):
            for L, errs in enumerate(orders_data["errors"][regime][variant]):
                e = np.array(errs, dtype=float)
                # errors under the exact reference's accuracy are round-off, not convergence: not drawn
                ax.loglog(Ns, np.where(e > RESOLVED, e, np.nan), ls=ls, marker="o", ms=3, color=colors[L],
                          label=f"L={L} {variant}")
                if variant == "bare":
                    guide = e[0] * (Ns / Ns[0]) ** (-(L + 1))
                    ax.loglog(Ns, guide, color=colors[L], lw=0.8, alpha=0.4)
        if orders_data.get("adaptive_o2"):
            ax.loglog(Ns, orders_data["adaptive_o2"][regime], ls="--", marker="D", ms=3, color="darkgreen",
                      label="kernel adaptation o2 (means)")
        ax.axhline(RESOLVED, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("width N")
        ax.set_ylabel("max |loop order L - exact|")
        ax.set_title(f"{regime}, P = {orders_data['P']}: error vs N (faint: $N^{{-(L+1)}}$;\n"
                     "dotted: exact's accuracy, errors below not drawn)")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7, ncol=2)
    s2 = orders_data.get("statement2")
    if s2:
        ax = axes[-1]
        N2 = np.array(s2["Ns"], dtype=float)
        ax.loglog(N2, s2["tree_chi1"], "o-", color="tab:orange", label=r"tree, $\chi=1$, $P=N/2$")
        ax.loglog(N2, s2["dressed1_chi1"], "s-", color="tab:blue", label=r"dressed one loop, $\chi=1$, $P=N/2$")
        ax.loglog(N2, s2["tree_chiN"], "^--", color="tab:red", label=r"tree, $\chi=N$, $P=N/2$")
        _label(ax, "width N (P = N/2)", "RMS train-mean error vs exact", "statement 2: P comparable to N", 8, "both")
    fig.suptitle(title)
    return _save(fig, path)


def features(path, chis, rows, statement3, title):
    n = 3 if statement3 else 2
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.3), constrained_layout=True)
    ax = axes[0]
    _series(ax, chis, rows, "alignment", "alignment_err")  # the NNGP's is also every rescaled kernel's
    ax.set_xscale("log")
    _label(ax, r"$\chi$", r"kernel-target alignment $y^T C y / (|y|^2 \|C\|_F)$",
           "adapted kernel aligns with the target\n(a rescaled kernel keeps the NNGP's)")
    ax = axes[1]
    _series(ax, chis, rows, "omega", "omega_err")
    ax.axhline(0.0, color="0.45", ls="--", label="rescaling picture: no direction (0)")
    ax.set_xscale("log")
    _label(ax, r"$\chi$", r"$u^T \frac{1}{N}E[W^T W] u - g_w/D$ along the learned direction",
           "directional feature learning ~ chi/N")
    if statement3:
        ax = axes[2]
        Ns = np.array(statement3["Ns"], dtype=float)
        ax.loglog(Ns, statement3["order1_relative_residual"], "o-", color="tab:green",
                  label="kernel adaptation, one loop")
        ax.loglog(Ns, np.maximum(statement3["order0_relative_residual"], 1e-17), "s:", color="tab:green",
                  label="kernel adaptation, tree (exact rescaling)")
        where = f", P = {statement3['P']}, D = {statement3['D']}" if "P" in statement3 else ""
        layers = statement3.get("depth", 1)
        net = "linear network" + (f" of {layers} hidden layers" if layers > 1 else "")
        _label(ax, r"width N ($\chi = N$)", "residual of the best rescaling of K (relative)",
               f"statement 3 ({net}{where}):\nthe adapted mean is a rescaling", 7, "both")
    fig.suptitle(title)
    return _save(fig, path)
