"""What the main job writes and prints: results.csv, results.json and the summary table (summary.txt)."""
from __future__ import annotations

import csv
import json

from ..results import strict


def write_csv(path, res):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["section", "method", "x", "quantity", "value", "error"])
        for method, cols in res["rows"].items():
            for q, vals in cols.items():
                if q.endswith("_err"):
                    continue
                errs = cols.get(q + "_err")
                for j, v in enumerate(vals):
                    w.writerow(["ladder", method, res["chis"][j], q, v, "" if errs is None else errs[j]])
        if "orders" in res:
            o = res["orders"]
            for regime, d in o["errors"].items():
                for variant, per_L in d.items():
                    for L, e in enumerate(per_L):
                        for N, v in zip(o["Ns"], e):
                            w.writerow(["orders", f"loop_o{L}_{variant}", N, f"error {regime}", v, ""])
            s2 = o["statement2"]
            for k in ("tree_chi1", "dressed1_chi1", "tree_chiN"):
                for N, v in zip(s2["Ns"], s2[k]):
                    w.writerow(["statement2", k, N, "rms train-mean error", v, ""])
        if "statement3" in res:
            s3 = res["statement3"]
            for k in ("order0_residual", "order0_relative_residual", "order1_relative_residual", "s_eff"):
                for N, v in zip(s3["Ns"], s3[k]):
                    w.writerow(["statement3", k, N, k, v, ""])


def write_json(path, res):
    with open(path, "w") as fh:
        fh.write(json.dumps(strict(res), indent=1, default=float) + "\n")


def fit_width(console, table) -> None:
    """Widen the console to the table's natural width: piped or redirected output (80 columns by default)
    cut the cells short (0.290/0.8...)."""
    from rich.measure import Measurement

    console.width = max(console.width, Measurement.get(console, console.options.update_width(10_000), table).maximum)


def summary(console, res, quick, out):
    """The discrepancy table and the statements' PASS/FAIL lines, printed and written as out/summary.txt."""
    from rich.console import Console

    with open(out / "summary.txt", "w") as fh:  # the table as a file too: `msat run` writes figures + table + JSON
        _table_and_checks(Console(file=fh, color_system=None, highlight=False, width=100), res, quick)
    _table_and_checks(console, res, quick)
    said = {m: sum(map(len, per_chi.values())) for m, per_chi in res.get("warnings", {}).items()}
    if said:  # what predict warned of on the ladder: counted here, said in full in results.json
        console.print("predict's warnings: " + ", ".join(f"{m} {n}" for m, n in said.items())
                      + " (results.json, \"warnings\", per method and chi)", markup=False, highlight=False)
    console.print(f"wrote {out}/fig_discrepancy.png, fig_orders.png, fig_features.png, results.json, "
                  f"results.csv, summary.txt in {res['seconds']:.1f} s")


def _table_and_checks(console, res, quick):
    from rich.table import Table

    chis = res["chis"]
    t = Table(title=f"msat run ({'quick' if quick else 'full'}): RMS train / test discrepancy")
    t.add_column("chi", justify="right")
    methods = list(res["rows"])
    for m in methods:
        t.add_column(m, justify="right")
    for j, chi in enumerate(chis):
        cells = []
        for m in methods:
            r = res["rows"][m]
            cells.append(f"{r['disc_train'][j]:.3f}/{r['disc_test'][j]:.3f}")
        t.add_row(f"{chi:.3g}", *cells)
    fit_width(console, t)
    console.print(t)
    for c in res["checks"]:
        console.print(f"{c['status']} statement {c['statement']} ({c['figure']}): {c['detail']}")
