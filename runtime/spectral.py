"""One eigendecomposition per data set: the spectral data every scalar-field evaluation uses.

docs/theory.md §2a: with K = U diag(lam) U^T and yt = U^T y, every term of S(s) and every observable is a
spectral sum over modes. This module is linear-algebra plumbing only: it builds K, k*, k** of a
linear network (docs/theory.md §1) by BLAS products and diagonalises K once. K is never inverted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Spectrum:
    """Eigenpairs of K and the projections the observables contract with.

    lam: eigenvalues of K (ascending, clipped at 0: K is positive semi-definite, round-off can make
    the zero modes of a rank-deficient K slightly negative); U: eigenvectors (P x P);
    yt = U^T y; Kt = k*^T U (P* x P); kss = k** (P*).
    """

    lam: np.ndarray
    U: np.ndarray
    yt: np.ndarray
    Kt: np.ndarray
    kss: np.ndarray

    @property
    def yt2(self) -> np.ndarray:
        return self.yt * self.yt

    @property
    def P(self) -> int:
        return self.lam.shape[0]

    @property
    def P_test(self) -> int:
        return self.kss.shape[0]


def linear_kernels(X: np.ndarray, X_test: np.ndarray | None, g_w: float):
    """K = (g_w/D) X X^T, k* = (g_w/D) X X*^T, k** = (g_w/D) |x*|^2 (docs/theory.md §1, generated)."""
    from msat import generated

    X_test = np.zeros((0, X.shape[1])) if X_test is None else X_test
    K, kstar, kss = generated.nngp_kernels().input_kernels(X, X_test, g_w)
    return K, kstar, kss  # eigh reads one triangle, so round-off asymmetry of K is harmless


def decompose(K: np.ndarray, y: np.ndarray, kstar: np.ndarray, kss: np.ndarray) -> Spectrum:
    """Diagonalise K once (numpy.linalg.eigh) and project y and k* on its eigenvectors."""
    lam, U = np.linalg.eigh(K)
    lam = np.clip(lam, 0.0, None)
    yt = U.T @ y
    Kt = kstar.T @ U
    return Spectrum(
        lam=np.ascontiguousarray(lam),
        U=U,
        yt=np.ascontiguousarray(yt),
        Kt=np.ascontiguousarray(Kt),
        kss=np.ascontiguousarray(kss, dtype=np.float64),
    )


def phi_kernels(mod, act, K, kstar, kss):
    """K^phi of one layer from the covariance of its preactivations (generated NNGP kernels)."""
    dK = np.ascontiguousarray(np.diag(K))
    Kphi = np.empty_like(K)
    mod.nngp_pairs(K, dK, dK, act, Kphi)
    kstar_phi = np.empty_like(kstar)
    kss_phi = np.empty_like(kss)
    if kss.shape[0]:
        mod.nngp_pairs(np.ascontiguousarray(kstar), dK, kss, act, kstar_phi)
        mod.nngp_diagonal(kss, act, kss_phi)
    return Kphi, kstar_phi, kss_phi


def nngp_kernels(X: np.ndarray, X_test: np.ndarray | None, g_w, activation: str):
    """K^phi, k*^phi, k**^phi of the last hidden layer (docs/theory.md §1, §2d): ``g_w`` is one prior
    scale (one hidden layer) or one per layer. The preactivations of layer l have covariance
    g_l K_{l-1} (generated ``layer_preactivations``), K_0 = X X^T / D."""
    from msat import generated

    mod = generated.nngp_kernels()
    g_ws = (g_w,) if np.ndim(g_w) == 0 else tuple(g_w)
    K, kstar, kss = linear_kernels(X, X_test, g_ws[0])
    for layer, g in enumerate(g_ws):
        if layer:
            K, kstar, kss = (mod.layer_preactivations(M, g) for M in (K, kstar, kss))
        if activation != "linear":
            K, kstar, kss = phi_kernels(mod, mod.ACTIVATIONS.index(activation), K, kstar, kss)
    return K, kstar, kss


def spectrum(X: np.ndarray, y: np.ndarray, X_test: np.ndarray | None, g_w: float,
             activation: str = "linear") -> Spectrum:
    """Spectral data of the NNGP kernel K^phi (K itself for a linear network)."""
    return decompose(*_with_y(nngp_kernels(X, X_test, g_w, activation), y))


def _with_y(kernels, y):
    K, kstar, kss = kernels
    return K, y, kstar, kss
