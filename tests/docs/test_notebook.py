"""examples/quickstart.ipynb runs from top to bottom (nbclient, a fresh kernel in a scratch
folder) and shows what it promises: the result's notebook display, a ladder of every linear
method converging on the exact answer, a figure, and sampled networks with diagnostics."""
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def _printed(outputs):
    """A cell's printed text and warnings, without what changes from run to run (times, the kernel's paths)."""
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    text = re.sub(r"seconds per point \S+", "seconds per point ...", text)
    return re.sub(r"/tmp/ipykernel_\d+/\d+\.py", "<cell>", text)


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    path = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, path)
    nb = nbformat.read(path, as_version=4)
    stored = [_printed(c.outputs) for c in nb.cells if c.cell_type == "code"]
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    # what the stored notebook shows is what it prints now (an outside audit: its warnings had gone stale)
    assert stored == [_printed(c.outputs) for c in nb.cells if c.cell_type == "code"]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("msat result" in h for h in html)  # the Result's _repr_html_
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figure
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    errors = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(.+?)\s+max \|test mean - exact\| = (\S+)", text, re.M)}
    assert errors["loop, order 3"] < errors["loop, order 1"] < errors["nngp"]
    assert errors["adaptive, order 2"] < errors["adaptive, order 1"]
    z = [float(v) for v in re.search(r"z-scores against exact: \[([^\]]*)\]", text).group(1).split()]
    assert max(abs(v) for v in z) < 5
