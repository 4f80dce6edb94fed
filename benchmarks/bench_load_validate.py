"""Benchmark: load + validate 1,000,000 generated long-format judgements (200k items x 5) from
Parquet through the bring-your-own pipeline (``smo_impact.data.loader.load_data``).

Target (issue 3): under 20 s and under 2 GB. The file is generated first; the load runs in a fresh
child process so that its peak resident memory (``VmHWM``) is the load's alone, and the
child's import-only peak is measured the same way for reference.

    .venv/bin/python benchmarks/bench_load_validate.py [--items 200000] [--raters-per-item 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CHILD = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
from smo_impact.config import DatasetSpec
from smo_impact.data.loader import load_data
imported = time.perf_counter()
cpu0 = time.process_time()
if sys.argv[1] == "load":
    spec = DatasetSpec(name="bench", path=sys.argv[2], labels=["not_toxic", "toxic"], slice_columns=["language"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_data(spec)
    loaded = time.perf_counter()
    cpu = time.process_time() - cpu0
    digest = data.digest()
    digested = time.perf_counter()
    out = {"load_validate_s": loaded - imported, "load_validate_cpu_s": cpu, "digest_s": digested - loaded, "judgements": len(data.annotations),
           "items": len(data.items), "raters": int(data.annotations["worker"].nunique()), "warnings": [str(w.message) for w in caught]}
else:
    out = {}
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) parent across fork/exec.
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
out["peak_rss_mb"] = hwm_kb / 1024
print(json.dumps(out))
"""


def generate(path: Path, n_items: int, per_item: int, n_raters: int, seed: int = 0) -> None:
    """Long-format judgements with realistic column names and types (text, split, slice, label)."""
    rng = np.random.default_rng(seed)
    words = np.array(["the", "you", "are", "great", "awful", "people", "today", "news", "idiot", "kind", "game", "city"])
    item_words = rng.integers(0, len(words), size=(n_items, 8))
    texts = [" ".join(words[row]) + f" #{i}" for i, row in enumerate(item_words)]  # unique: no leakage
    split = rng.choice(np.array(["train", "dev", "test"]), size=n_items, p=[0.7, 0.1, 0.2])
    language = rng.choice(np.array(["en", "de", "fr"]), size=n_items)
    truth = rng.random(n_items) < 0.3
    # judgement j of item i is by rater (start_i + j * 2919) % n_raters: distinct within an item
    start = rng.integers(0, n_raters, size=(n_items, 1))
    raters = (start + np.arange(per_item) * 2919) % n_raters
    flips = rng.random((n_items, per_item)) < 0.15
    labels = np.where(truth[:, None] ^ flips, "toxic", "not_toxic")
    item_index = np.repeat(np.arange(n_items), per_item)
    frame = pd.DataFrame(
        {
            "task": pd.Series(item_index).map("item-{:07d}".format),
            "worker": pd.Series(raters.ravel()).map("rater-{:05d}".format),
            "label": labels.ravel(),
            "text": np.array(texts, dtype=object)[item_index],
            "split": split[item_index],
            "language": language[item_index],
            "seconds_spent": rng.gamma(2.0, 6.0, size=n_items * per_item).round(1),
        }
    )
    frame.to_parquet(path, index=False)


def child(mode: str, path: Path) -> dict:
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(path)], capture_output=True, text=True, cwd=repo, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--raters-per-item", type=int, default=5)
    parser.add_argument("--raters", type=int, default=5_000, help="size of the rater pool")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "judgements.parquet"
        start = time.perf_counter()
        generate(path, args.items, args.raters_per_item, args.raters)
        print(f"generated {args.items * args.raters_per_item:,} judgements in {time.perf_counter() - start:.1f} s "
              f"({path.stat().st_size / 1e6:.0f} MB parquet)")
        baseline = child("import", path)
        result = child("load", path)
    print(f"load + validate: {result['load_validate_s']:.1f} s wall, {result['load_validate_cpu_s']:.1f} s CPU  "
          f"(digest: {result['digest_s']:.1f} s more)")
    print(f"peak RSS: {result['peak_rss_mb']:.0f} MB  (imports alone: {baseline['peak_rss_mb']:.0f} MB)")
    print(f"loaded {result['judgements']:,} judgements, {result['items']:,} items, {result['raters']:,} raters; "
          f"{len(result['warnings'])} warning(s)")
    ok = result["load_validate_s"] < 20 and result["peak_rss_mb"] < 2048
    print(f"target (< 20 s, < 2 GB): {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
