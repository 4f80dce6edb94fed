"""A/A calibration: how often does each gate type fire when the two arms differ by chance alone?

Runs experiments/aa_md_agreement.yaml (control and replica: majority vote + 10% noise, the replica
on another random stream) for many seeds with each model variant, compares every replica run with
its seed's control exactly as `smo-impact run` does, and counts per gate type how many of those
null comparisons fail, with a Clopper-Pearson 95% interval. Stores the table in
smo_impact/analysis/aa_calibration.json, which run summaries quote next to each gate.

    make bench-validity                     # all variants (tens of minutes on 2 cores)
    python benchmarks/bench_aa.py --seeds 120 --variants tfidf
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from smo_impact.analysis.calibration import aa_comparisons, false_alarms, save_calibration
from smo_impact.config import load_config

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "aa_md_agreement.yaml"
# name -> (overrides, what differs between the arms)
VARIANTS = {
    "tfidf": ([], "10% noise on another stream"),
    "embedding": (["model.name=embedding_logreg", "model.params={encoder: minilm, C: 1.0}"], "10% noise on another stream"),
    # No noise at all: the arms differ only in the MLP's initial weights and batch order.
    "mlp_seed_only": (
        ["arms.control=[aggregate]", "arms.replica=[aggregate]", "model.name=embedding_mlp",
         "model.params={encoder: minilm}"],
        "model seed only",
    ),
}
METRICS = ("test/macro_f1", "test/recall", "test/roc_auc")
RESULTS = Path(__file__).resolve().parent / "results"


def run_variant(name: str, seeds: int, console: Console) -> pd.DataFrame:
    overrides, what = VARIANTS[name]
    config = load_config(EXPERIMENT, [*overrides, f"seeds={seeds}"])
    start, cpu = time.perf_counter(), time.process_time()
    with console.status(f"{name}: A/A comparisons") as status:
        comparisons = aa_comparisons(config, progress=lambda i, n: status.update(f"{name}: {i}/{n} A/A comparisons"))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    RESULTS.mkdir(exist_ok=True)  # the raw comparisons, for a second look at any gate's count
    comparisons.to_parquet(RESULTS / f"aa_{name}.parquet", index=False)
    table = false_alarms(comparisons, METRICS, config.evaluation.gates.alpha)
    label = f"{config.dataset.name}/{config.model.name}" + ("/seed-only" if "seed" in name else "")
    save_calibration(table, label, {"comparisons": len(comparisons), "arms_differ_by": what, "alpha": config.evaluation.gates.alpha,
                                    "seconds": round(seconds, 1)})
    show = Table(title=f"{label}: {len(comparisons)} A/A comparisons ({what}), {seconds:.0f} s wall, {cpu:.0f} s CPU",
                 title_justify="left")
    for column in ("gate", "fired", "n", "rate", "95% CI"):
        show.add_column(column, justify="left" if column == "gate" else "right")
    for r in table.itertuples():
        show.add_row(r.gate, str(r.fired), str(r.n), f"{r.rate:.1%}", f"{r.ci_low:.1%}-{r.ci_high:.1%}")
    console.print(show)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=120, help="A/A comparisons per variant (default 120).")
    parser.add_argument("--variants", default="tfidf,embedding,mlp_seed_only", help=f"Comma-separated: {', '.join(VARIANTS)}.")
    parser.add_argument("--mlp-seeds", type=int, default=40, help="Comparisons for the (slow) seed-only MLP variant.")
    args = parser.parse_args()
    console = Console(width=160)
    for name in args.variants.split(","):
        run_variant(name.strip(), args.mlp_seeds if name.strip() == "mlp_seed_only" else args.seeds, console)


if __name__ == "__main__":
    main()
