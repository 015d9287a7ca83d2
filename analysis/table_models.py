"""NAT++ Table 1 (hand-crafted models) and Table 3 (NAS-based models): original / NAT / NAT++ rows with params,
MAdds and accuracy, ours (trained from scratch) beside the paper's numbers (marked quoted).

Run:
    for a in DARTS_V2 NAT_DARTS NATv2_DARTS; do
        python experiments/train_eval.py --arch $a --data DATA --seed 0 --out evals/$a-s0; done
    python analysis/table_models.py evals/ --table 3 --out tables/

Our rows: train_eval.py runs grouped by (model, method, dataset); accuracy = final-epoch test accuracy, mean ±
std over seeds; params and MAdds measured on the network we trained (its cells, channels and depth are in the
source column; the tiny preset's numbers are not comparable with the paper's 600-epoch ones). The quoted rows
(NAO, ESNAC, APS and the papers' own original / NAT / NAT++ rows) come from analysis/quoted.py. Writes
table1 or table3 .{md,tex,csv}. Table 1's models are whole networks in the paper; ours are their cells in the
DARTS macro structure, so our costs differ from the quoted ones by construction.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from natrl.errors import ArgumentParser, NatrlError, cli_entry
from natrl.results import load_runs, pm, require, summarise, write_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quoted import TABLE1, TABLE3, quoted_rows  # noqa: E402

METHOD_ORDER = ["/", "NAO", "ESNAC", "APS", "NAT", "NAT++", "NAT/NAT++"]


def table_models(frame: pd.DataFrame, table: int):
    models = list({1: TABLE1, 3: TABLE3}[table])
    runs = frame[frame["kind"] == "scratch"] if len(frame) else frame
    if len(runs):
        import json
        labels = [json.loads((Path(p) / "results.json").read_text()) for p in runs["path"]]
        runs = runs.assign(**{k: [r[key] for r in labels] for k, key in (
            ("model", "model"), ("method", "method"), ("ds", "dataset"), ("epochs", "epochs"), ("layers", "layers"),
            ("channels", "channels"))})
        runs = runs[runs["model"].isin(models)]
    runs = require(runs, f"train_eval.py runs of Table {table}'s models ({', '.join(models)})",
                   f"python experiments/train_eval.py --arch {'NATv2_VGG' if table == 1 else 'NATv2_DARTS'} --data DATA")
    summary = summarise(runs, ["model", "method", "ds", "epochs", "layers", "channels"],
                        ["test_acc", "params_M", "madds_M"])
    rows = []
    for model, method, p, m, c10, c100 in quoted_rows(table):
        rows.append({"model": model, "method": method, "source": f"quoted (NAT++ Table {table})",
                     "#Params (M)": f"{p}", "#MAdds (M)": f"{m}", "CIFAR-10 (%)": f"{c10:.2f}",
                     "CIFAR-100 (%)": f"{c100:.2f}"})
    for (model, method, epochs, layers, channels), g in summary.groupby(["model", "method", "epochs", "layers", "channels"]):
        row = {"model": model, "method": method,
               "source": f"ours, trained from scratch ({layers} cells, C={channels}, {epochs} epochs; seeds "
                         f"{g['seeds'].iloc[0]})"}
        first = g.iloc[0]
        row["#Params (M)"] = f"{first['params_M_mean']:.2f}"
        row["#MAdds (M)"] = f"{first['madds_M_mean']:.0f}"
        for ds, col in (("cifar10", "CIFAR-10 (%)"), ("cifar100", "CIFAR-100 (%)")):
            r = g[g["ds"] == ds]
            row[col] = "-" if r.empty else pm(r["test_acc_mean"].iloc[0], r["test_acc_std"].iloc[0])
        rows.append(row)
    shown = pd.DataFrame(rows)
    shown["_m"] = shown["model"].map({m: i for i, m in enumerate(models)})
    shown["_k"] = shown["method"].map({m: i for i, m in enumerate(METHOD_ORDER)}).fillna(len(METHOD_ORDER))
    shown["_o"] = shown["source"].str.startswith("ours")
    shown = shown.sort_values(["_m", "_k", "_o"]).drop(columns=["_m", "_k", "_o"])
    caption = (f"NAT++ Table {table}: {'hand-crafted' if table == 1 else 'NAS-based'} models; rows marked quoted are "
               "the paper's numbers, rows marked ours are measured here (accuracy: test set, final epoch, mean ± std "
               "over seeds; run ids in the CSV).")
    return shown, summary, caption


@cli_entry
def main(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="+", help="train_eval.py run directories, or folders holding them")
    p.add_argument("--table", type=int, choices=[1, 3], required=True, help="NAT++ Table 1 or Table 3")
    p.add_argument("--out", default="tables", help="output directory (default: tables)")
    args = p.parse_args(argv)
    shown, summary, caption = table_models(load_runs(args.paths), args.table)
    print(write_table(Path(args.out), f"table{args.table}", shown, caption, summary))


if __name__ == "__main__":
    main()
    sys.exit(0)
