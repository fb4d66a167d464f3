"""derive.neuron: the first-order cumulant expansion of the tilted single-neuron law, derived by
SymPy, against a finite difference of the tilted mean, and its centred form (symbolic identity)."""
import numpy as np
import pytest
import sympy as sp

from msat.derive import neuron


@pytest.mark.parametrize("M", [2, 3, 5])
def test_first_order_tilt_is_the_centred_covariance(M):
    d, g, q = neuron.first_order_tilt(M)
    centred = neuron.centred_form(M)
    assert sp.simplify(d - centred) == 0
    rng = np.random.default_rng(M)
    gv, qv = rng.standard_normal(M), rng.standard_normal(M)

    def tilted(eps):
        w = np.exp(eps * qv)
        return gv @ w / w.sum()

    fd = (tilted(1e-5) - tilted(-1e-5)) / 2e-5
    value = float(d.subs({**dict(zip(g, gv)), **dict(zip(q, qv))}))
    assert value == pytest.approx(fd, rel=1e-8)
