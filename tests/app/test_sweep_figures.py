"""`msat sweep --plot` (runtime.app.sweep_figures): the figures show the numbers of independent
predict calls (error against width per method, a heat map over (N, chi)), and bad requests exit 2."""
import math

import numpy as np
import pytest

from msat.runtime import data, grid, labelled, predict, sweep
from msat.runtime.app import sweep_figures as sf
from msat.runtime.app.console import main

SPEC = dict(N="20,40,80", chi="1,sqrtN,N", kappa="0.5", method="exact,nngp,loop:1", seed="0..1", P="10", D="4",
            P_test="3", source="teacher")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A small store written serially through the sweep's own task and writer (no cluster)."""
    path = tmp_path_factory.mktemp("fig") / "s.zarr"
    g = grid.build(**SPEC)
    sweep._prepare(str(path), g, ("builtin", "teacher"), False)
    w = labelled.ZarrWriter(path, g)
    for idx, task in g.tasks():
        out, note, fail = sweep.run_task(g, task, ("builtin", "teacher"), {})
        assert fail is None
        w.write(idx, out, note)
    return path


def _error(method, N, chi, seed):
    ds = data.builtin("teacher", P=10, D=4, P_test=3, seed=seed)
    ref, got = (predict(ds.X, ds.y, ds.X_test, N=N, chi=chi, kappa=0.5, method=m, order=o)
                for m, o in (("exact", None), (method, 1 if method == "loop" else None)))
    return math.sqrt(np.mean((got.test_mean - ref.test_mean) ** 2))


def test_error_against_width_per_method_shows_predict_errors(store):
    st = sf.select(sf.open_store(store), ["chi=N"])
    fig, label = sf.plot(st)
    containers = {c.get_label(): c for c in fig.axes[0].containers}  # errorbar containers
    lines = {k: c.lines[0] for k, c in containers.items()}
    assert set(lines) == {"nngp", "loop:1"} and "exact" in label  # the reference is not drawn
    for N_i, N in enumerate((20, 40, 80)):
        for name in ("nngp", "loop"):
            per_seed = [_error(name, N, float(N), s) for s in (0, 1)]
            got = lines["loop:1" if name == "loop" else "nngp"].get_ydata()[N_i]
            assert got == pytest.approx(np.mean(per_seed), rel=1e-10)  # seeds averaged
            # the bar is the seeds' standard error, not their spread (an SD passed before)
            (_, lo), (_, hi) = containers["loop:1" if name == "loop" else "nngp"].lines[2][0].get_segments()[N_i]
            assert (hi - lo) / 2 == pytest.approx(np.std(per_seed, ddof=1) / np.sqrt(2), rel=1e-8)
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"


def test_the_titles_of_fixed_options_fit_inside_the_figure(store):
    """The title listing every option held at one value ran past both edges of the figure (two audits)."""
    for kw, sel in ((dict(), ["chi=N"]), (dict(x="N", y="chi", hue="method"), ["seed=1"])):
        fig, _ = sf.plot(sf.select(sf.open_store(store), sel), **kw)
        fig.canvas.draw()
        titles = [t for t in [fig._suptitle] + [ax.title for ax in fig.axes] if t is not None and t.get_text()]
        assert any("kappa=0.5" in t.get_text() and "dataset=teacher" in t.get_text() for t in titles)
        for t in titles:
            box = t.get_window_extent(fig.canvas.get_renderer())
            assert box.x0 >= 0 and box.x1 <= fig.bbox.x1, t.get_text()
        sf.plt.close(fig)


def test_heat_map_over_width_and_chi(store):
    st = sf.select(sf.open_store(store), ["seed=1"])
    fig, _ = sf.plot(st, x="N", y="chi", hue="method")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["nngp", "loop:1"]
    z = panels[1].collections[0].get_array().reshape(3, 3)  # rows chi (1, sqrtN, N), columns N
    assert z[2, 0] == pytest.approx(_error("loop", 20, 20.0, 1), rel=1e-10)
    assert z[1, 2] == pytest.approx(_error("loop", 80, math.sqrt(80), 1), rel=1e-10)


def test_plot_command_and_its_errors(store, tmp_path, capsys):
    out = tmp_path / "f.png"
    assert main(["sweep", "--plot", str(store), "--sel", "chi=N", "--out", str(out)]) == 0 and out.stat().st_size
    assert main(["sweep", "--plot", str(store), "--y", "chi", "--sel", "seed=0", "--color", "s_mean",
                 "--out", str(out)]) == 0
    assert main(["sweep", "--plot", str(store), "--sel", "chi=N", "--reference", "targets", "--out", str(out)]) == 0
    capsys.readouterr()
    for bad, says in ((["--sel", "chi=N", "--y", "bogus"], "not a quantity"),
                      ([], "choose one with --sel chi"),
                      (["--sel", "kappa=9"], "the store has kappa = 0.5"),
                      (["--sel", "chi=N", "--reference", "adaptive"], "not a method of the store"),
                      (["--sel", "chi=N", "--x", "test_point"], "not an option of the store"),
                      (["--sel", "chi=N", "--sel", "method=exact"], "the only method left is the reference exact")):
        assert main(["sweep", "--plot", str(store), *bad, "--out", str(out)]) == 2, bad
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err
    assert main(["sweep", "--plot", str(tmp_path / "none.zarr")]) == 2
    capsys.readouterr()
    for bad_out, says in ((tmp_path / "fig.txt", "writes no .txt figures"), (tmp_path, "is a folder")):
        assert main(["sweep", "--plot", str(store), "--sel", "chi=N", "--out", str(bad_out)]) == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err
    assert main(["sweep", "--plot", str(store), "--sel", "chi=N", "--out", str(tmp_path / "bare")]) == 0
    assert (tmp_path / "bare.png").stat().st_size and "wrote " + str(tmp_path / "bare.png") in capsys.readouterr().err
    # options of a sweep run are not read by --plot: said, with the way to select instead
    assert main(["sweep", "--plot", str(store), "--sel", "chi=N", "--kappa", "0.5", "--N", "20",
                 "--out", str(out)]) == 0
    assert "--N, --kappa ignored with --plot" in capsys.readouterr().err
    # ... also when the figure fails: then at the end of the error's one line (`--chi` may be the selection meant)
    assert main(["sweep", "--plot", str(store), "--chi", "N", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--chi ignored with --plot" in err and "--sel" in err and len(err.strip().splitlines()) == 1, err
    assert main(["sweep", "--dataset", "teacher", "--N", "20", "--kappa", "1", "--out", str(out)]) == 2
    assert "needs --chi" in capsys.readouterr().err
