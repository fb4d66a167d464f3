"""Every numba kernel family of generated/ (spectral, row_map, scalar, densities, nngp) and the
runtime's numba integrators give the same numbers compiled and as plain Python
(NUMBA_DISABLE_JIT=1, a subprocess each)."""
import json
import os
import subprocess
import sys

import numpy as np

_SCRIPT = r"""
import json, numpy as np
from msat import generated
from msat.generated import densities, nngp, observables
from msat.runtime.numerics.hmc import leapfrog_chain
from msat.runtime.numerics.mala import mala_chains
rng = np.random.default_rng(5)
out = {}
mod = generated.rescaling(2)
J, K = 3, 6
s, chi, lam, yt2 = rng.uniform(0.5, 2, J), rng.uniform(1, 20, J), rng.uniform(0, 3, K), rng.uniform(0, 1, K)
dS0, dS1 = np.empty((J, mod.N_ACTION)), np.empty((J, mod.N_ACTION))
mod.action_derivatives(s, chi, 30.0, 0.5, 1.0, lam, yt2, np.ones(K), dS0, dS1)                       # spectral
w = np.empty((J, mod.N_TERMS, mod.N_TABLE)); mod.weights_bare(dS0, dS1, w)              # row_map
v, m2, m = (rng.standard_normal((mod.N_TERMS, 4)) for _ in range(3))
tv = np.empty_like(m); mod.truncated_variance(v, m2, m, tv)                             # row_map
lin = generated.linear_adaptation()
rho = rng.uniform(0.1, 3.0, 5); b, f, df = (np.empty(5) for _ in range(3))
lin.adapted_spectrum_o1(rho, 20.0, 0.4, 1.2, b, f, df)                                  # row_map
out["scalar"] = [lin.rank_one_coefficient_o1(20.0, 3.0, 1.2),
                 observables.kernel_target_alignment(2.0, 3.0, 1.5)]                    # scalar
X, y = rng.standard_normal((5, 3)), rng.standard_normal(5)
Kin, ks, kss = nngp.input_kernels(X, X[:2], 1.0)
Kphi, kdiag = np.empty_like(Kin), np.empty(2)
for act in range(3):
    nngp.nngp_pairs(Kin, np.diag(Kin).copy(), np.diag(Kin).copy(), act, Kphi)          # nngp
    nngp.nngp_diagonal(kss, act, kdiag)
    out[f"nngp{act}"] = Kphi.tolist() + [kdiag.tolist()]
    W, a = rng.standard_normal((4, 3)), rng.standard_normal(4)
    gW, ga = np.empty_like(W), np.empty_like(a)
    lp = densities.network_log_posterior(W, a, X, y, 2.0, 0.5, 1.0, 1.0, act, gW, ga, np.empty((4, 5)),
                                         np.empty(5), np.ascontiguousarray(X.T), np.empty((4, 5)), np.empty((4, 5)))
    g = np.empty(3)
    lq = densities.neuron_log_density(W[0].copy(), X, 0.01 * np.eye(5), 3.0, 1.0, act, *(np.empty(5) for _ in range(4)), g)
    feat = np.empty((4, 5)); densities.features(X, W, act, feat)                        # densities
    acc = np.empty(3)
    leapfrog_chain(W, a, X, y, X[:2], X[:1], 2.0, 0.5, 1.0, 1.0, act, 3.0, 8.0, 0.05, 4, 3, 0.2,
                   np.random.default_rng(1), True, True, np.empty((3, 5)), np.empty((3, 2)), np.empty((3, 1)),
                   np.empty(3), acc, np.zeros((3, 3)), np.zeros((5, 5)), np.zeros((3, 2)))
    samples = np.empty((8, 3))
    mala_chains(W[:2].copy(), X, 0.01 * np.eye(5), 3.0, 1.0, act, np.full(2, 0.05), 8, 4, 1, 7,
                np.zeros(2, dtype=np.int64), np.empty(2), samples)
    out[f"densities{act}"] = [lp, lq] + gW.ravel().tolist() + g.tolist() + feat.ravel().tolist() \
        + W.ravel().tolist() + acc.tolist() + samples.ravel().tolist()
out["arrays"] = [a.ravel().tolist() for a in (dS0, dS1, w, tv, b, f, df, Kin, ks, kss)]
print(json.dumps(out))
"""


def _run(env_extra):
    env = dict(os.environ, **env_extra)
    res = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout)


def _flat(x):
    if isinstance(x, (list, tuple)):
        return [v for item in x for v in _flat(item)]
    return [x]


def test_compiled_equals_pure_python():
    jit, nojit = _run({}), _run({"NUMBA_DISABLE_JIT": "1"})
    assert jit.keys() == nojit.keys()
    for key in jit:
        # integer powers and transcendental functions round differently in LLVM and CPython
        np.testing.assert_allclose(_flat(jit[key]), _flat(nojit[key]), rtol=1e-11, atol=1e-13, err_msg=key)


def test_numba_gets_a_cache_folder_where_the_install_and_home_are_read_only(tmp_path):
    """With the package and the home folder read-only numba raised at import ("no locator available"): even
    `msat --version` printed a traceback. runtime.numba_cache then points NUMBA_CACHE_DIR at a private folder
    before numba loads; here the unwritable folders are simulated (the tests run as a user who can write them)
    in a fresh interpreter, and a cached kernel compiles into that folder."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "runtime" / "numba_cache.py"
    code = f"""
import importlib.util, os, sys, tempfile
spec = importlib.util.spec_from_file_location("numba_cache", {str(src)!r})
nc = importlib.util.module_from_spec(spec); spec.loader.exec_module(nc)
tempfile.tempdir = {str(tmp_path)!r}
real = nc._writable
nc._writable = lambda folder: str(folder).startswith(tempfile.tempdir) and real(folder)
assert "numba" not in sys.modules
nc.ensure_writable()
print(os.environ["NUMBA_CACHE_DIR"])
import numba
@numba.njit(cache=True)
def twice(x):
    return 2 * x
assert twice(3) == 6
print(numba.config.CACHE_DIR)
"""
    (tmp_path / "kernel.py").write_text(code)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    res = subprocess.run([sys.executable, str(tmp_path / "kernel.py")], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    folder, configured = res.stdout.split()
    assert folder == configured and Path(folder).parent == tmp_path and any(Path(folder).rglob("*.nbi"))


def test_the_private_numba_folder_is_not_one_another_user_could_have_made(tmp_path, monkeypatch):
    """numba loads what it finds in its cache folder: a predictable /tmp name that already exists open to others
    (or as a link) is not used; a fresh private folder is made instead (outside review)."""
    import tempfile
    from pathlib import Path

    from msat.runtime import numba_cache

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    named = tmp_path / f"msat-numba-{os.getuid()}"
    first = numba_cache._private()
    assert first == named and (named.stat().st_mode & 0o777) == 0o700
    named.chmod(0o777)  # as if another user had made it for everyone
    other = numba_cache._private()
    assert other != named and other.parent == tmp_path and (other.stat().st_mode & 0o077) == 0
    named.rmdir()
    named.symlink_to(other)
    assert numba_cache._private() not in (named, other)
    assert isinstance(first, Path)
