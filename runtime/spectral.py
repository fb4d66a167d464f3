"""One factorisation per data set: the spectral data every scalar-field evaluation uses.

docs/theory.md §2a: with K = U diag(lam) U^T and yt = U^T y, every term of S(s) and every observable is a
spectral sum over modes. This module is linear-algebra plumbing only. A linear network's kernel
K = (g_w/D) X X^T has rank r <= D: when D < P its nonzero modes come from one thin SVD of X (O(P D^2)
time, O(P D) memory, no P x P matrix), and its P - r zero modes, which every formula treats alike,
are held as one mode of multiplicity P - r (yt2 = |y_null|^2 / (P - r), where y_null is y's part
outside the range of X). Otherwise K (or K^phi) is built and diagonalised once, and a linear K with modes
below that eigendecomposition's resolution takes its spectrum from the SVD of X. K is never inverted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

#: the two ways to the spectrum (reported in a result's params as "basis")
THIN, DENSE = "thin SVD of X", "P x P eigendecomposition"
#: the P x P eigendecomposition gives K's eigenvalues to ~eps ||K|| absolute, so one under this fraction of the
#: largest errs by over ~1e-8 relative; at small kappa that error moves the fit term's dependence on s (a null
#: mode at eps ||K|| adds chi g_v |y_k|^2 eps ||K|| / 2 kappa^2 to dS/ds). A linear kernel with such a mode
#: (rank-deficient or ill-conditioned X, P <= D) takes its spectrum from the SVD of X, ~eps^2 ||K|| absolute
ACCURATE_RTOL = 1e-8


@dataclass(frozen=True)
class Spectrum:
    """Eigenpairs of K and the projections the observables contract with.

    lam: eigenvalues of K per mode (clipped at 0: K is positive semi-definite, round-off can make
    the zero modes of a rank-deficient K slightly negative); mult: each mode's multiplicity (ones,
    except the aggregated zero mode of a thin spectrum); U: the eigenvectors of the modes held one
    by one (P x r); u0: the aggregated zero mode's column (thin spectra; its last mode), the sum of
    its modes' eigenvectors sqrt(P - r) y_null/|y_null|, so that sum_k c_k yt_k u_k is the same
    vector for coefficients c that depend on the mode only through lam; yt = U^T y per mode;
    Kt = k*^T U (P* x modes); kss = k** (P*). Vectors over the training points go through
    ``points`` and ``coefficients``, which know about u0.
    """

    lam: np.ndarray
    U: np.ndarray
    yt: np.ndarray
    Kt: np.ndarray
    kss: np.ndarray
    mult: np.ndarray = None
    basis: str = DENSE
    u0: np.ndarray | None = None

    def __post_init__(self):
        if self.mult is None:
            object.__setattr__(self, "mult", np.ones_like(self.lam))

    @property
    def yt2(self) -> np.ndarray:
        return self.yt * self.yt

    @property
    def y2(self) -> float:
        """|y|^2 = sum over modes of mult yt^2."""
        return float(self.mult @ self.yt2)

    @property
    def P(self) -> int:
        return self.U.shape[0]

    @property
    def modes(self) -> int:
        return self.lam.shape[0]

    @property
    def P_test(self) -> int:
        return self.kss.shape[0]

    def points(self, c: np.ndarray) -> np.ndarray:
        """sum_k c_k u_k over the modes: per-mode coefficients (..., modes) to vectors (..., P)."""
        n, c2 = self.U.shape[1], np.reshape(c, (-1, np.shape(c)[-1]))
        out = c2[:, :n] @ self.U.T  # one 2-D product (numpy loops over a batch of 3-D ones)
        if self.u0 is not None:
            out += c2[:, n:] * self.u0
        return out.reshape(np.shape(c)[:-1] + (self.P,))

    def coefficients(self, v: np.ndarray) -> np.ndarray:
        """Per-mode coefficients of vectors over the training points (rows of v or v itself) of the
        form ``points(c)``: U^T v, and u0^T v over the aggregated mode's multiplicity."""
        c = np.asarray(v) @ self.U
        if self.u0 is None:
            return c
        return np.concatenate([c, (np.asarray(v) @ self.u0 / self.mult[-1])[..., None]], axis=-1)

    def columns(self, mask: np.ndarray) -> np.ndarray:
        """The eigenvectors of the modes in ``mask`` (which cannot take the aggregated zero mode)."""
        n = self.U.shape[1]
        if np.any(mask[n:]):
            raise ValueError("the aggregated zero mode has no single eigenvector")
        return self.U[:, mask[:n]]

    def norm2(self, c: np.ndarray) -> float:
        """|U c|^2 from per-mode coefficients c (multiplicities counted)."""
        return float(self.mult @ (np.asarray(c) ** 2))


def linear_kernels(X: np.ndarray, X_test: np.ndarray | None, g_w: float):
    """K = (g_w/D) X X^T, k* = (g_w/D) X X*^T, k** = (g_w/D) |x*|^2 (docs/theory.md §1, generated)."""
    from msat import generated

    X_test = np.zeros((0, X.shape[1])) if X_test is None else X_test
    K, kstar, kss = generated.nngp_kernels().input_kernels(X, X_test, g_w)
    return K, kstar, kss  # eigh reads one triangle, so round-off asymmetry of K is harmless


def decompose(K: np.ndarray, y: np.ndarray, kstar: np.ndarray, kss: np.ndarray, overwrite: bool = False) -> Spectrum:
    """Diagonalise K once and project y and k* on its eigenvectors. LAPACK's syevr (scipy) needs O(P)
    workspace beside K and its eigenvectors; with ``overwrite`` K itself is the working copy (K is
    symmetric, so its transpose is the Fortran-ordered matrix LAPACK reads, without a copy)."""
    from scipy.linalg import eigh

    lam, U = eigh(K.T if overwrite else K, overwrite_a=overwrite, check_finite=False, driver="evr")
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


def thin(X: np.ndarray, y: np.ndarray, X_test: np.ndarray | None, g_ws) -> Spectrum:
    """The spectrum of a linear network's kernel from the thin SVD X = Q diag(sv) V^T (P x D).

    In the coordinates (Q, V) the inputs are diag(sv) and the test inputs X* V, so the generated
    input kernels of those r x r and P* x r arrays (r = min(P, D), prior scale g_w r / D) are
    U_r^T K U_r = diag(lam_r) and U_r^T k* exactly; k** is the test inputs' own; deeper linear layers
    rescale them (generated layer_preactivations, a multiple of its argument for linear layers, so
    it acts on eigenvalues as on the matrix). Where D < P the P - D zero modes are one mode (below);
    where D >= P (the accurate route for an ill-conditioned K, ACCURATE_RTOL) every mode is held, and
    V comes from the QR factorisation X^T = Q_r R and the SVD of R^T (numpy's SVD of a wide matrix
    is slow)."""
    from msat import generated

    mod = generated.nngp_kernels()
    P, D = X.shape
    X_test = np.zeros((0, D)) if X_test is None else X_test
    if D < P:
        Q, sv, Vt = np.linalg.svd(X, full_matrices=False)
        Kr, ksr, kss = mod.input_kernels(np.diag(sv), np.ascontiguousarray(X_test @ Vt.T), g_ws[0])
    else:
        Qr, R = np.linalg.qr(X.T)
        Q, sv, Wt = np.linalg.svd(R.T)
        Kr, ksr, _ = mod.input_kernels(np.diag(sv), np.ascontiguousarray((X_test @ Qr) @ Wt.T), g_ws[0] * P / D)
        kss = mod.input_kernels(X[:0], X_test, g_ws[0])[2]
    lam, Kt = np.ascontiguousarray(np.diag(Kr)), np.ascontiguousarray(ksr.T)
    for g in g_ws[1:]:
        lam, Kt, kss = (mod.layer_preactivations(M, g) for M in (lam, Kt, kss))
    return _thin_targets(Q, y, lam, Kt, kss)


def _thin_targets(Q, y, lam, Kt, kss) -> Spectrum:
    """A thin spectrum from the factor Q (P x r) and the r modes' lam and k*^T Q: y projected on Q, and the P - r
    zero modes, where there are any, as one mode along y's part outside the range of Q."""
    P = Q.shape[0]
    yt = Q.T @ y
    m0 = P - Q.shape[1]
    if m0 == 0:
        return Spectrum(lam=np.clip(lam, 0.0, None), U=Q, yt=np.ascontiguousarray(yt), Kt=Kt,
                        kss=np.ascontiguousarray(kss, dtype=np.float64), basis=THIN)
    null = np.asarray(y, dtype=float) - Q @ yt
    null -= Q @ (Q.T @ null)  # a second pass: y in (or near) the range of X leaves round-off
    n0 = float(np.linalg.norm(null))
    u0 = null * (math.sqrt(m0) / n0) if n0 > 0 else np.zeros(P)
    return Spectrum(lam=np.append(np.clip(lam, 0.0, None), 0.0), U=Q,
                    yt=np.append(yt, n0 / math.sqrt(m0)), Kt=np.hstack([Kt, np.zeros((Kt.shape[0], 1))]),
                    kss=np.ascontiguousarray(kss, dtype=np.float64),
                    mult=np.append(np.ones(len(lam)), float(m0)), basis=THIN, u0=u0)


def retarget(spec: Spectrum, y: np.ndarray) -> Spectrum:
    """The spectrum of the same inputs and test inputs with targets y: only y's projections change, so the
    factorisation is reused (runtime.roundoff solves again with y in other units), computed as spectrum() would."""
    if spec.basis != THIN:
        return replace(spec, yt=np.ascontiguousarray(spec.U.T @ y))
    r = spec.U.shape[1]
    return _thin_targets(spec.U, y, spec.lam[:r], np.ascontiguousarray(spec.Kt[:, :r]), spec.kss)


#: singular values of the inputs under this fraction of the largest span no direction (spanned): dropping them moves
#: the kernels by under 1e-20 of their scale, below round-off
SPAN_RTOL = 1e-10


def spanned(X: np.ndarray, X_test: np.ndarray | None, g_w: float):
    """(X V, X* V, g_w r / D): the inputs in an orthonormal basis V (D x r) of the span of the training and test
    inputs, where its dimension r is under D; otherwise the inputs themselves and g_w.

    A first-layer neuron w ~ N(0, g_w/D) enters the network only through the preactivations X w and X* w, which
    depend on V^T w ~ N(0, g_w/D) in r coordinates: the same network, written with r inputs and the prior scale
    g_w r / D. Estimators that sample w then draw none of the D - r directions that no input sees."""
    X_all = X if X_test is None else np.vstack([X, X_test])
    D = X.shape[1]
    if X_all.shape[0] == 0 or D <= 1:
        return X, X_test, g_w
    _, sv, Vt = np.linalg.svd(X_all, full_matrices=False)
    r = max(int(np.sum(sv > SPAN_RTOL * sv[0])), 1)
    if r >= D:
        return X, X_test, g_w
    V = Vt[:r].T
    Xt = None if X_test is None else np.ascontiguousarray(X_test @ V)
    return np.ascontiguousarray(X @ V), Xt, g_w * r / D


def basis(P: int, D: int, activation: str) -> str:
    """Which factorisation serves a request: the thin SVD for linear networks with D < P."""
    return THIN if activation == "linear" and D < P else DENSE


def weights_hold_kernel(activation, P, D, N) -> bool:
    """Whether the sampled feature kernels are kept through W^T W (D x D) instead of P x P sums: for
    linear networks with D < P, when the N x N Gram matrix per draw is also smaller than P x P."""
    return activation == "linear" and D < P and N < P


def phi_kernels(mod, act, K, kstar, kss, overwrite: bool = False):
    """K^phi of one layer from the covariance of its preactivations (generated NNGP kernels); with
    ``overwrite`` K^phi is written over K (element by element: the map is pointwise given the diagonal)."""
    dK = np.diag(K).copy()
    Kphi = K if overwrite else np.empty_like(K)
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
            K, kstar, kss = phi_kernels(mod, mod.ACTIVATIONS.index(activation), K, kstar, kss, overwrite=True)
    return K, kstar, kss


def spectrum(X: np.ndarray, y: np.ndarray, X_test: np.ndarray | None, g_w: float,
             activation: str = "linear", basis_: str | None = None) -> Spectrum:
    """Spectral data of the NNGP kernel K^phi (K itself for a linear network), by the thin SVD of X
    where it serves (linear, D < P) unless ``basis_`` says otherwise."""
    g_ws = (g_w,) if np.ndim(g_w) == 0 else tuple(g_w)
    if (basis_ or basis(*X.shape, activation)) == THIN and activation == "linear" and X.shape[1] < X.shape[0]:
        return thin(X, y, X_test, g_ws)
    K, kstar, kss = nngp_kernels(X, X_test, g_w, activation)
    spec = decompose(K, y, kstar, kss, overwrite=True)
    top = spec.lam.max(initial=0.0)
    if activation == "linear" and top > 0 and not spec.lam.min() > ACCURATE_RTOL * top:
        return thin(X, y, X_test, g_ws)  # modes below eigh's resolution: their eigenvalues from the SVD of X
    return spec
