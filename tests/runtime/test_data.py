"""Tests for msat.runtime.data: validation, loaders, built-in sets."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from msat.runtime import data
from msat.runtime.errors import InputError


def _raises_one_line(fn, *args, match=None, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message, repr(message)
    assert "Traceback" not in message
    if match is not None:
        assert match in message, message
    return message


def _arrays(P=7, D=3, P_test=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(P, D)), rng.normal(size=P), rng.normal(size=(P_test, D)), rng.normal(size=P_test)


# ------------------------------------------------------------------------------------- validate


def test_validate_converts_and_reshapes():
    X = [[1, 2], [3, 4], [5, 6]]
    ds = data.validate(X, np.array([[1], [0], [1]]), X_test=[7, 8], name="mine")
    assert ds.X.dtype == np.float64 and ds.X.flags.c_contiguous and ds.X.shape == (3, 2)
    assert ds.y.shape == (3,) and ds.y.dtype == np.float64
    assert ds.X_test.shape == (1, 2) and ds.y_test is None
    assert ds.name == "mine" and (ds.P, ds.D, ds.P_test) == (3, 2, 1)
    ds = data.validate(np.asfortranarray(np.ones((4, 3), dtype=np.float32)), np.ones(4))
    assert ds.X.flags.c_contiguous and ds.X.dtype == np.float64
    assert ds.X_test.shape == (0, 3) and ds.y_test is None


@pytest.mark.parametrize("key", ["X", "y", "X_test", "y_test"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_validate_non_finite(key, bad):
    arrays = dict(zip(("X", "y", "X_test", "y_test"), _arrays()))
    target = arrays[key]
    target.flat[1] = bad
    message = _raises_one_line(data.validate, **arrays)
    assert f"{key} contains" in message
    assert ("NaN" if np.isnan(bad) else "inf") in message


def test_validate_shape_errors():
    X, y, Xt, yt = _arrays()
    _raises_one_line(data.validate, X, y[:-1], match="y has 6 entries but X has 7 rows")
    _raises_one_line(data.validate, X, y, Xt[:, :2], match="X_test has 2 columns")
    _raises_one_line(data.validate, X, y, np.ones(5), match="X_test")
    _raises_one_line(data.validate, X, y, Xt, yt[:1], match="y_test")
    _raises_one_line(data.validate, X, y, None, yt, match="y_test given without X_test")
    _raises_one_line(data.validate, np.zeros((0, 5)), np.zeros(0), match="empty")
    _raises_one_line(data.validate, np.zeros((3, 0)), np.zeros(3), match="empty")
    _raises_one_line(data.validate, np.ones(4), np.ones(4), match="2-D")
    _raises_one_line(data.validate, X, np.ones((7, 2)), match="y must be a vector")


def test_validate_non_numeric():
    _raises_one_line(data.validate, [["a", "b"], ["c", "d"]], [1, 2], match="X is not numeric")
    _raises_one_line(data.validate, [[1, 2], [3]], [1, 2], match="X")
    _raises_one_line(data.validate, np.ones((2, 2)) * 1j, [1, 2], match="complex")
    _raises_one_line(data.validate, np.ones((2, 2)), [{"a": 1}, None], match="y")


# ------------------------------------------------------------------------------------------ npz


def test_npz_round_trip(tmp_path):
    X, y, Xt, yt = _arrays()
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y, X_test=Xt, y_test=yt, extra=np.arange(3))
    ds = data.load(path)
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, y)
    np.testing.assert_array_equal(ds.X_test, Xt)
    np.testing.assert_array_equal(ds.y_test, yt)
    assert str(path) in ds.name

    out = tmp_path / "again.npz"
    data.save_npz(out, ds)
    again = data.load_npz(out)
    for a, b in [(again.X, X), (again.y, y), (again.X_test, Xt), (again.y_test, yt)]:
        np.testing.assert_array_equal(a, b)

    only = tmp_path / "only.npz"
    np.savez(only, X=X, y=y.reshape(-1, 1))
    ds = data.load_npz(only)
    assert ds.X_test.shape == (0, 3) and ds.y_test is None and ds.y.shape == (7,)
    data.save_npz(tmp_path / "only2.npz", ds)
    ds2 = data.load_npz(tmp_path / "only2.npz")
    assert ds2.X_test.shape == (0, 3) and ds2.y_test is None


def test_npz_errors(tmp_path):
    X, y, _, _ = _arrays()
    _raises_one_line(data.load, tmp_path / "nope.npz", match="not found")

    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(np.random.default_rng(1).bytes(2000))
    message = _raises_one_line(data.load, corrupt, match=str(corrupt))
    assert "npz" in message

    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    _raises_one_line(data.load, empty, match=str(empty))

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, X=X, y=np.array([{"a": 1}] * 7, dtype=object))
    _raises_one_line(data.load, pickled, match="'y' holds Python objects")

    missing = tmp_path / "missing.npz"
    np.savez(missing, X=X, target=y)
    message = _raises_one_line(data.load, missing, match="'y' is missing")
    assert "X, target" in message

    npy = tmp_path / "plain.npz"
    with open(npy, "wb") as handle:
        np.save(handle, X)
    _raises_one_line(data.load, npy, match="single .npy array")

    nan = tmp_path / "nan.npz"
    Xn = X.copy()
    Xn[2, 1] = np.nan
    np.savez(nan, X=Xn, y=y)
    message = _raises_one_line(data.load, nan, match="X contains NaN")
    assert str(nan) in message and "X[2, 1]" in message

    _raises_one_line(data.load, tmp_path / "d.txt", match="unsupported")
    (tmp_path / "adir.npz").mkdir()
    _raises_one_line(data.load, tmp_path / "adir.npz", match="not a file")


# ------------------------------------------------------------------------------------------ csv


def test_csv_round_trip_without_split(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a, b ,y\n1,2,3\n\n4,5.5,-6\n-1e-3, 7 ,8\n")
    ds = data.load(path)
    np.testing.assert_array_equal(ds.X, [[1, 2], [4, 5.5], [-1e-3, 7]])
    np.testing.assert_array_equal(ds.y, [3, -6, 8])
    assert ds.X_test.shape == (0, 2) and ds.y_test is None


def test_csv_round_trip_with_split_and_custom_target(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(
        "x1,label,split,x2\n"
        "1,10,train,2\n"
        "3,30, TEST ,4\n"
        "5,50,Train,6\n"
        "7,70,test,8\n"
    )
    ds = data.load_csv(path, target="label")
    np.testing.assert_array_equal(ds.X, [[1, 2], [5, 6]])
    np.testing.assert_array_equal(ds.y, [10, 50])
    np.testing.assert_array_equal(ds.X_test, [[3, 4], [7, 8]])
    np.testing.assert_array_equal(ds.y_test, [30, 70])
    ds = data.load(path, target="label")
    np.testing.assert_array_equal(ds.X_test, [[3, 4], [7, 8]])


def test_csv_test_rows_without_targets(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y,split\n1,1,train\n2,4,train\n3,,test\n")
    ds = data.load_csv(path)
    np.testing.assert_array_equal(ds.X_test, [[3]])
    assert ds.y_test is None


def test_csv_round_trip_from_generated_data(tmp_path):
    X, y, Xt, yt = _arrays(P=20, D=4, P_test=5)
    lines = ["f0,f1,f2,f3,y,split"]
    lines += [",".join(repr(float(v)) for v in [*row, t]) + ",train" for row, t in zip(X, y)]
    lines += [",".join(repr(float(v)) for v in [*row, t]) + ",test" for row, t in zip(Xt, yt)]
    path = tmp_path / "g.csv"
    path.write_text("\n".join(lines) + "\n")
    ds = data.load(path)
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, y)
    np.testing.assert_array_equal(ds.X_test, Xt)
    np.testing.assert_array_equal(ds.y_test, yt)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("a,b,y\n1,2,3\n4,oops,6\n", "non-numeric value 'oops' at line 3, column 'b'"),
        ("a,b,target\n1,2,3\n", "target column 'y' not found (columns: a, b, target)"),
        ("1,2,3\n4,5,6\n", "header"),
        ("", "empty"),
        ("a,b,y\n", "no data rows"),
        ("a,b,y\n1,2,3\n4,5\n", "line 3 has 2 fields but the header has 3"),
        ("a,y,split\n1,2,train\n3,4,valid\n", "unknown split value 'valid' at line 3"),
        ("a,y,split\n1,2,test\n", "no training rows"),
        ("a,b,y\n1,,3\n", "empty cell at line 2, column 'b'"),
        ("a,b,y\n1,nan,3\n", "non-finite value 'nan' at line 2, column 'b'"),
        ("a,b,y\n1,2,inf\n", "non-finite value 'inf' at line 2, column 'y'"),
        ("y,split\n1,train\n", "no input columns"),
        ("a,a,y\n1,2,3\n", "duplicate column name 'a'"),
        ("a\tb\ty\n1\t2\t3\n", "no commas but tabs: msat reads comma-separated files"),
        ("a;b;y\n1;2;3\n", "no commas but semicolons"),
    ],
)
def test_csv_errors(tmp_path, text, needle):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    message = _raises_one_line(data.load, path, match=needle)
    assert str(path) in message


def test_csv_missing_file(tmp_path):
    _raises_one_line(data.load_csv, tmp_path / "none.csv", match="not found")


# ---------------------------------------------------------------------------------------- ising


def test_ising_labels_and_spins():
    for D in (8, 9):
        ds = data.ising(300, D, P_test=50, seed=3)
        assert ds.X.shape == (300, D) and ds.X_test.shape == (50, D)
        assert ds.X.dtype == np.float64 and ds.X.flags.c_contiguous
        for X, y in [(ds.X, ds.y), (ds.X_test, ds.y_test)]:
            assert set(np.unique(X)) <= {-1.0, 1.0}
            total = X.sum(axis=1)
            expected = np.where(total > 0, 1.0, np.where(total < 0, -1.0, X[:, 0]))
            np.testing.assert_array_equal(y, expected)
    # even D: ties occur and are broken by the first spin, both ways
    ds = data.ising(2000, 4, seed=0)
    tie = ds.X.sum(axis=1) == 0
    assert tie.sum() > 10
    np.testing.assert_array_equal(ds.y[tie], ds.X[tie, 0])
    assert {-1.0, 1.0} <= set(ds.y[tie])


def test_ising_seeding():
    a = data.ising(50, 30, P_test=10, seed=7)
    b = data.ising(50, 30, P_test=10, seed=7)
    c = data.ising(50, 30, P_test=10, seed=8)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert not np.array_equal(a.X, c.X)


@pytest.mark.parametrize("J", [0.5, 1.0])
def test_ising_nearest_neighbour_correlation(J):
    # Exact for the periodic chain at large D: <s_i s_{i+1}> = tanh(J) (corrections ~ tanh(J)^D),
    # and the magnetisation variance per spin is (1 + t) / (1 - t), t = tanh(J).
    D, P = 200, 400
    ds = data.ising(P, D, seed=11, J=J)
    X = ds.X
    nn = np.mean(X * np.roll(X, -1, axis=1))
    assert abs(nn - np.tanh(J)) < 0.03
    t = np.tanh(J)
    var = X.sum(axis=1).var() / D
    assert abs(var / ((1 + t) / (1 - t)) - 1) < 0.25


@pytest.mark.parametrize("D, J", [(3, 0.5), (4, 0.5), (5, -0.4), (6, 1.0)])
def test_ising_small_rings_match_enumeration(D, J):
    # Exact Boltzmann weights by enumeration for small rings: the sampler must reproduce the
    # nearest-neighbour correlation and the magnetisation second moment (catches non-ergodic
    # update schemes, which converge to the wrong distribution exactly on small rings).
    S = np.array(list(itertools.product([-1.0, 1.0], repeat=D)))
    bonds = S * np.roll(S, -1, axis=1)
    w = np.exp(J * bonds.sum(axis=1))
    w /= w.sum()
    exact_nn = w @ bonds.mean(axis=1)
    exact_m2 = w @ S.sum(axis=1) ** 2 / D
    X = data.ising(20000, D, seed=2, J=J, sweeps=30).X
    nn = np.mean(X * np.roll(X, -1, axis=1))
    m2 = np.mean(X.sum(axis=1) ** 2) / D
    assert abs(nn - exact_nn) < 0.02
    assert abs(m2 - exact_m2) < 0.05 * max(1.0, exact_m2)


def test_ising_degenerate_cases():
    one = data.ising(500, 1, seed=0)
    np.testing.assert_array_equal(one.y, one.X[:, 0])
    assert 0.4 < np.mean(one.X == 1) < 0.6
    free = data.ising(200, 50, seed=0, J=0.0)
    assert abs(np.mean(free.X * np.roll(free.X, -1, axis=1))) < 0.03


# -------------------------------------------------------------------------------------- teacher


def test_teacher_recovered_by_least_squares():
    P, D = 60, 20
    ds = data.teacher(P, D, P_test=15, seed=4)
    w0 = np.random.default_rng(4).standard_normal(D)  # the teacher is the first draw
    w, *_ = np.linalg.lstsq(ds.X, ds.y, rcond=None)
    assert np.max(np.abs(ds.X @ w - ds.y)) < 1e-12
    np.testing.assert_allclose(w, w0 / np.sqrt(D), atol=1e-12)
    np.testing.assert_allclose(ds.X_test @ w, ds.y_test, atol=1e-12)
    assert ds.X_test.shape == (15, D) and ds.name == "teacher"


def test_teacher_noise_on_train_only_and_seeding():
    clean = data.teacher(40, 10, P_test=5, seed=1)
    noisy = data.teacher(40, 10, P_test=5, seed=1, noise=0.3)
    np.testing.assert_array_equal(clean.X, noisy.X)
    np.testing.assert_array_equal(clean.X_test, noisy.X_test)
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)
    assert 0.1 < np.std(noisy.y - clean.y) < 0.6
    other = data.teacher(40, 10, P_test=5, seed=2)
    assert not np.array_equal(clean.X, other.X)


# -------------------------------------------------------------------------------------- builtin


def test_builtin_dispatch_and_errors():
    ds = data.builtin("ising", 20, 10, P_test=5, seed=1)
    np.testing.assert_array_equal(ds.X, data.ising(20, 10, 5, seed=1).X)
    ds = data.builtin(" Teacher ", 20, 10, seed=1, noise=0.1)
    np.testing.assert_array_equal(ds.y, data.teacher(20, 10, seed=1, noise=0.1).y)
    _raises_one_line(data.builtin, "mnist", 10, 10, match="unknown built-in dataset 'mnist'")
    _raises_one_line(data.builtin, "ising", 0, 10, match="P must be")
    _raises_one_line(data.builtin, "ising", 10, 0, match="D must be")
    _raises_one_line(data.builtin, "teacher", 10, 10, P_test=-1, match="P_test must be")
    _raises_one_line(data.builtin, "teacher", 10.5, 10, match="P must be")
    _raises_one_line(data.builtin, "teacher", 10, 10, seed=-3, match="seed")
    _raises_one_line(data.builtin, "teacher", 10, 10, J=0.3, match="unknown option 'J'")
    _raises_one_line(data.teacher, 10, 10, noise=-1.0, match="noise")
    _raises_one_line(data.ising, 10, 10, J=float("nan"), match="J")
