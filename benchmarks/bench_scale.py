"""Scale: 10,000,000 generated judgements (2M items x 5): load from Parquet + validate, majority
vote, Dawid-Skene, Krippendorff's alpha. Seconds per stage and peak memory.

Target (issue 9): under 60 s in all and under 6 GB on this 2-core machine. Each stage runs in
one fresh child process so its peak resident memory (VmHWM) is measured, not the generator's.

    .venv/bin/python benchmarks/bench_scale.py [--items 2000000] [--per-item 5] [--ds-iter 10]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, sys, time, warnings
import numpy as np
from smo_impact.config import DatasetSpec
from smo_impact.data.loader import load_data
from smo_impact.data.schema import vote_counts
from smo_impact.quality.agreement import krippendorff_alpha
from smo_impact.treatments.aggregate import majority_vote
from smo_impact.treatments.dawid_skene import dawid_skene

path, ds_iter = sys.argv[1], int(sys.argv[2])
out = {}
t = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    data = load_data(DatasetSpec(name="scale", path=path, labels=["not_toxic", "toxic"], slice_columns=["language"]))
out["load_validate_s"] = time.perf_counter() - t
ann = data.annotations
out["judgements"], out["items"] = len(ann), len(data.items)

t = time.perf_counter()
mv = majority_vote(ann, data.labels, data.positive_label, "positive")
out["majority_vote_s"] = time.perf_counter() - t

t = time.perf_counter()
counts = vote_counts(ann, data.labels).to_numpy()
out["alpha"] = krippendorff_alpha(counts, "nominal")
out["krippendorff_alpha_s"] = time.perf_counter() - t

t = time.perf_counter()
fit = dawid_skene(ann, data.labels, n_iter=ds_iter)
ds = fit.labels
out["dawid_skene_s"] = time.perf_counter() - t
out["ds_iterations"] = fit.n_iter
out["ds_vs_mv_agreement"] = float((ds.reindex(mv.index) == mv).mean())
out["total_s"] = sum(v for k, v in out.items() if k.endswith("_s"))
out["peak_rss_mb"] = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2_000_000)
    parser.add_argument("--per-item", type=int, default=5)
    parser.add_argument("--raters", type=int, default=20_000)
    parser.add_argument("--ds-iter", type=int, default=50, help="Dawid-Skene EM iterations (at most)")
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("bench_load_validate", HERE / "bench_load_validate.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "judgements.parquet"
        t = time.perf_counter()
        generator.generate(path, args.items, args.per_item, args.raters)
        print(f"generated {args.items * args.per_item:,} judgements in {time.perf_counter() - t:.1f} s "
              f"({path.stat().st_size / 2**20:.0f} MiB Parquet)")
        child = subprocess.run([sys.executable, "-c", CHILD, str(path), str(args.ds_iter)],
                               capture_output=True, text=True, check=False)
        if child.returncode != 0:
            sys.exit(child.stderr[-3000:])
        out = json.loads(child.stdout.strip().splitlines()[-1])
    for key in ("load_validate_s", "majority_vote_s", "krippendorff_alpha_s", "dawid_skene_s", "total_s"):
        print(f"{key:24s} {out[key]:8.1f}")
    print(f"{'peak memory (MiB)':24s} {out['peak_rss_mb']:8.0f}")
    print(f"Dawid-Skene EM iterations: {out['ds_iterations']}")
    print(f"alpha={out['alpha']:.3f}  DS agrees with MV on {out['ds_vs_mv_agreement']:.1%} of items  "
          f"(target: total < 60 s, peak < 6144 MiB -> ratios {out['total_s'] / 60:.2f}, {out['peak_rss_mb'] / 6144:.2f})")


if __name__ == "__main__":
    main()
