"""Newton-Krylov's stop at the round-off floor of a steep map (numerics.newton; docs/theory.md §2d): where
no step lowers the residual, the point is the fixed point if the residual is within numerics.newton.FLOOR of how
far x's own rounding moves it, and a failure otherwise."""
import numpy as np
import pytest

from msat.runtime.errors import ConvergenceError
from msat.runtime.numerics import newton


def _steep(slope, x_star, feasible=lambda x: True):
    """s(x) = x* + 1e-3 + slope tanh(x - x*), and its Jacobian-vector product: its fixed point lies near x*, between
    two floats (where s - x is at least |slope| times x's rounding)."""
    def sweep(x):
        return (x_star + 1e-3 + slope * np.tanh(x - x_star), None) if feasible(x) else None

    return sweep, lambda x, v, at: slope * (1 - np.tanh(x - x_star) ** 2) * v


X_STAR = np.random.default_rng(0).uniform(1.0, 3.0, 50)


def test_a_steep_maps_fixed_point_is_found_at_its_round_off_floor():
    # slope -1e6: evaluating s near x* carries 1e6 times x's rounding, so 1e-13 is out of float64's reach
    x_star = X_STAR
    sweep, jvp = _steep(-1e6, x_star)
    x, _, _, res, _ = newton.solve(sweep, jvp, x_star + 0.01, 1.0, tol=1e-13)
    assert 1e-13 < res < 1e-8  # not the tolerance: the floor
    assert np.max(np.abs(sweep(x)[0] - x)) < 1e6 * 4 * np.finfo(float).eps * np.max(x_star)
    # a map no steeper than x's rounding still reaches the tolerance itself
    sweep, jvp = _steep(-2.0, x_star)
    assert newton.solve(sweep, jvp, x_star + 0.01, 1.0, tol=1e-13)[3] <= 1e-13


def test_a_step_blocked_far_above_the_floor_is_still_a_failure():
    # the feasible set ends before the fixed point: no step lowers the residual, which is far above round-off
    x_star = X_STAR
    sweep, jvp = _steep(-1e6, x_star, feasible=lambda x: x[0] >= x_star[0] + 0.005)
    with pytest.raises(ConvergenceError, match="no feasible decrease"):
        newton.solve(sweep, jvp, x_star + 0.01, 1.0, tol=1e-13)
