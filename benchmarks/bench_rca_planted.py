"""Root-cause analysis scored on planted faults: does ``smo-impact rca`` name the fault we planted?

Each planting is one experiment on real data (the mirror): a clean control arm, and a treatment
arm that carries one known fault next to a second, realistic change (fewer judgements per item,
or the least-agreeing raters dropped: ``rater_pool``), so that other raters, rules and slices
have changes of their own that move training labels and the score, and the fault has to stand
out among them. The treatment run is attributed with ``attribute_run`` (what ``smo-impact rca``
runs); the diagnosis is right at top-1 / top-3 when the planted group is first / among the first
three of the ranking. Which rater / rule / slice, how strong, and the run seed are drawn at random
per planting.

Fault types:

* **rater** (``--by worker``): one real rater turns careless: flips most judgements (symmetric
  noise at 60-90%), answers at random (a spammer: 50%) or over-flags (0 -> 1 at 50-90%), via
  judgement-level ``noise`` restricted to that rater (``workers: [X]``). Datasets: HS-Brexit (6
  raters, each labels every item; the treatment keeps 4 per item), ConvAbuse (8 experts, 3-8 per
  item; the treatment drops the expert who agrees least with the others) and MD-Agreement (the
  careless rater is one of its 10 busiest; the treatment drops the 10% of its 670 training raters
  who agree least, so the worker dimension has ~70 groups and is screened before retraining).
  ArMIS is left out: with 3 raters per item, fewer judgements leave a tie on every disagreement.
* **rule** (``--by cause``): ConvAbuse on its raw severity scale (``binarize: false``); the
  control applies guideline v1, v2 or v3, the treatment the same guideline with one rule wrong:
  its output inverted or its severity threshold moved by one step (only mutations that leave no
  judgement unmatched and change some judgement's label). Scored on the correct guideline's view
  of the test split (``benchmark: view``).
* **slice** (``--by domain``): MD-Agreement, one ``domain`` shifted: its judgements over-flagged
  (0 -> 1 at 30-60%), or its training labels over-flagged (20-50%) or under-flagged (1 -> 0 at
  30-60%), by ``noise`` with ``slice: {domain: [X]}``.

A diagnosis is well posed when the treatment regresses macro-F1 and the fault alone costs more
than the second change alone (measured first, with extra arms ``fault_only`` and ``second_only``,
outside the timed diagnosis): plantings are drawn until ``--scored`` well-posed ones per fault type
have been diagnosed; the others are listed, not diagnosed. The model
is TF-IDF + logistic regression with balanced class weights (without them, on these imbalanced
datasets, a fault that adds positives mostly raises macro-F1 at threshold 0.5). CPU time
(``time.process_time``) is what one diagnosis costs on a busy machine; wall time is printed next
to it. Data is loaded once per dataset and passed in; features come from the feature cache after
the first diagnosis on a dataset.

    python benchmarks/bench_rca_planted.py [--scored 20] [--max-draws 60] [--faults rater,rule,slice] [--seed 0] [--out FILE.csv]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from smo_impact.analysis.rca import attribute_run
from smo_impact.config import DatasetSpec, validate
from smo_impact.data.loader import load_data
from smo_impact.treatments.guideline import Guideline

GUIDELINES = Path(__file__).resolve().parent.parent / "configs" / "treatments" / "guidelines"
MODEL = {"name": "tfidf_logreg", "params": {"C": 4.0, "class_weight": "balanced"}}
RATER_DATASETS = ("hs-brexit", "convabuse", "md-agreement")
# The treatment's second change, a real lever whose own cost is below a typical fault's:
# * keep fewer judgements per item (rule and slice faults; HS-Brexit raters): 4 of 6 on
#   HS-Brexit keeps the majority threshold at half (3 of 6 and 2 of 4, ties to the positive
#   class); 4 of 5 on MD-Agreement with ties broken at random; on ConvAbuse only items with more
#   than 3 raters lose judgements;
# * drop the raters who agree least with the others (ConvAbuse and MD-Agreement raters: the
#   worst of 8, the worst 10% of 670, so that MD-Agreement's worker dimension is screened).
KEEP_PER_ITEM = {"hs-brexit": 4, "md-agreement": 4, "convabuse-raw": 3}
TIE = {"md-agreement": "random"}
KEEP_RATERS = {"convabuse": 7 / 8, "md-agreement": 0.9}


@dataclass
class Planting:
    fault: str
    dataset: str  # key of the loaded datasets
    what: str  # the planted fault, in words
    config: dict
    by: str
    expected: str  # the group the diagnosis must name (a rule: '|'-separated texts, one of which its cause contains)
    benchmark: str | None = None


def _config(name: str, dataset: dict, arms: dict, seed: int, benchmarks: list | None = None) -> dict:
    evaluation: dict[str, Any] = {"bootstrap": 0}
    if benchmarks:
        evaluation["benchmarks"] = benchmarks
    return {"name": name, "dataset": dataset, "arms": arms, "seeds": [seed], "model": MODEL, "evaluation": evaluation}


def careless(rng: np.random.Generator) -> tuple[str, dict]:
    """A careless rater's judgement noise: flipper, spammer or over-flagger."""
    kind = rng.choice(["flips", "spammer", "over-flags"])
    if kind == "flips":
        rate = round(float(rng.uniform(0.6, 0.9)), 2)
        return f"flips {rate:.0%}", {"rate": rate}
    if kind == "spammer":
        return "spammer (random answers)", {"rate": 0.5}
    p = round(float(rng.uniform(0.5, 0.9)), 2)
    return f"over-flags {p:.0%}", {"transitions": {0: {1: p}}}


def _pool(name: str, fault: str) -> list:
    """The treatment's second change (before its fault), then its aggregation."""
    if fault == "rater" and name in KEEP_RATERS:
        return [{"rater_pool": {"by": "quality", "fraction": KEEP_RATERS[name]}}, "aggregate"]
    return [{"rater_pool": {"by": "per_item", "k": KEEP_PER_ITEM[name]}}, {"aggregate": {"tie": TIE.get(name, "positive")}}]


def rater_plantings(rng: np.random.Generator, data: dict) -> Iterator[Planting]:
    from smo_impact.treatments.rater_pool import leave_one_out_agreement

    for i in itertools.count():
        name = RATER_DATASETS[i % len(RATER_DATASETS)]
        train = data[name].split_annotations("train")
        candidates = train["worker"].value_counts().index
        if name in KEEP_RATERS:  # the careless rater is one the quality pool keeps
            quality = leave_one_out_agreement(train).sort_values(kind="stable")
            kept = set(quality.index[-max(1, int(round(KEEP_RATERS[name] * len(quality)))):])
            candidates = [w for w in candidates if w in kept]
        pool = candidates[:10] if name == "md-agreement" else candidates
        worker = str(rng.choice(np.asarray(pool, dtype=object)))
        what, noise = careless(rng)
        fault = {"noise": {**noise, "level": "judgement", "workers": [worker]}}
        second, aggregate = _pool(name, "rater")
        arms = {"control": ["aggregate"], "planted": [second, fault, aggregate], "fault_only": [fault, "aggregate"],
                "second_only": [second, aggregate]}
        seed = int(rng.integers(0, 1000))
        yield Planting("rater", name, f"{worker} {what}", _config(f"rater{i}", {"name": name}, arms, seed), "worker", worker)


def guideline_mutations(base: dict, annotations: pd.DataFrame) -> list[tuple[str, dict, int]]:
    """Every one-rule mistake of ``base`` that labels every judgement and changes some label:
    (description, wrong guideline, index of the wrong rule)."""
    candidates = []
    for r, rule in enumerate(base["rules"]):
        inverted = copy.deepcopy(base)
        inverted["rules"][r]["label"] = 1 - rule["label"]
        candidates.append((f"rule {r} output inverted", inverted, r))
        cond = rule["when"].get("severity")
        ops = cond if isinstance(cond, dict) else ({"eq": cond} if cond is not None else {})
        for op, value in ops.items():
            if op in ("le", "lt", "ge", "gt", "eq") and isinstance(value, int):
                for step in (-1, 1):
                    if -3 <= value + step <= 1:
                        moved = copy.deepcopy(base)
                        moved["rules"][r]["when"]["severity"] = {**ops, op: value + step}
                        candidates.append((f"rule {r} severity {op} {value} -> {value + step}", moved, r))
    kept = []
    correct = Guideline(Guideline.Params.model_validate({**base, "unmatched": "drop"}))
    truth = _guideline_labels(correct, annotations)
    for what, wrong, r in candidates:
        labels = _guideline_labels(Guideline(Guideline.Params.model_validate({**wrong, "unmatched": "drop"})), annotations)
        if len(labels) < len(annotations):  # a judgement no rule matches
            continue
        if (labels != truth).sum() == 0 or labels.nunique() < 2:
            continue
        kept.append((what, wrong, r))
    return kept


def _guideline_labels(step: Guideline, annotations: pd.DataFrame) -> pd.Series:
    from smo_impact.treatments.base import LabelState

    items = pd.DataFrame({"task": annotations["task"].unique(), "text": "", "split": "train"})
    state = LabelState(items=items, annotations=annotations, labels_set=(1, 0, -1, -2, -3), positive_label=-3)
    return step.apply(state, np.random.default_rng(0)).annotations["label"]


def rule_plantings(rng: np.random.Generator, data: dict) -> Iterator[Planting]:
    train = data["convabuse-raw"].split_annotations("train")
    mutations = {}
    for version in ("v1", "v2", "v3"):
        base = yaml.safe_load((GUIDELINES / f"convabuse_{version}.yaml").read_text())["guideline"]
        mutations[version] = (base, guideline_mutations(base, train))
    for i in itertools.count():
        version = ("v1", "v2", "v3")[i % 3]
        base, options = mutations[version]
        what, wrong, r = options[int(rng.integers(len(options)))]
        wrong = {**wrong, "version": f"{version}-planted"}
        arms = {
            "control": [{"guideline": base}, "aggregate"],
            "planted": [{"guideline": wrong}, *_pool("convabuse-raw", "rule")],
            "fault_only": [{"guideline": wrong}, "aggregate"],
            "second_only": [{"guideline": base}, *_pool("convabuse-raw", "rule")],
        }
        view = [{"name": "view", "split": "test", "reference": [{"guideline": base}, "aggregate"]}]
        seed = int(rng.integers(0, 1000))
        config = _config(f"rule{i}", {"name": "convabuse", "binarize": False}, arms, seed, view)
        # The rule is named on the treatment's side (its output or a widened threshold) or, when a
        # narrowed rule hands its judgements to the next rule, on the control's side of the cause.
        expected = f"guideline {version}-planted rule {r} (|control: guideline {version} rule {r} ("
        yield Planting("rule", "convabuse-raw", f"{version} {what} ({base['rules'][r]['name']})", config, "cause", expected, "view")


def slice_plantings(rng: np.random.Generator, data: dict) -> Iterator[Planting]:
    domains = sorted(data["md-agreement"].items["domain"].dropna().unique())
    pool = _pool("md-agreement", "slice")
    for i in itertools.count():
        domain = str(rng.choice(domains))
        kind = ("judgements over-flagged", "labels over-flagged", "labels under-flagged")[i % 3]
        if kind == "judgements over-flagged":
            p = round(float(rng.uniform(0.3, 0.6)), 2)
            flip, level = {0: {1: p}}, {"level": "judgement"}
        elif kind == "labels over-flagged":
            p = round(float(rng.uniform(0.2, 0.5)), 2)
            flip, level = {0: {1: p}}, {}
        else:
            p = round(float(rng.uniform(0.3, 0.6)), 2)
            flip, level = {1: {0: p}}, {}
        shift = {"noise": {"transitions": flip, "slice": {"domain": [domain]}, **level}}
        steps = [shift, *pool] if level else [*pool, shift]
        arms = {"control": ["aggregate"], "planted": steps, "fault_only": [shift, "aggregate"] if level else ["aggregate", shift],
                "second_only": pool}
        seed = int(rng.integers(0, 1000))
        config = _config(f"slice{i}", {"name": "md-agreement"}, arms, seed)
        yield Planting("slice", "md-agreement", f"{domain}: {kind} {p:.0%}", config, "domain", domain)


def alone(planting: Planting, dataset: Any) -> dict:
    """macro-F1 regressions vs control of the planted arm, of the fault alone and of the second
    change alone (arms ``planted``, ``fault_only``, ``second_only``), scored as the runner scores.
    The diagnosis is well posed (scored) when the planted arm regresses and the fault alone costs
    more than the second change alone."""
    from dataclasses import replace

    from smo_impact.runner.experiment import prepare
    from smo_impact.runner.run import score, train, treat

    _, ctx, specs, _ = prepare(validate(planting.config), dataset=dataset)
    namespace = planting.benchmark or ctx.benchmarks[0].namespace
    ctx = replace(ctx, benchmarks=tuple(b for b in ctx.benchmarks if b.namespace == namespace), bootstrap=0)
    value = {}
    for spec in specs:
        model = train(spec, ctx, treat(spec, ctx).state)
        value[spec.arm] = score(spec, ctx, model)[namespace].metrics[f"{namespace}/macro_f1"]
    regression = {arm: value["control"] - value[arm] for arm in ("planted", "fault_only", "second_only")}
    return {
        "regression": regression["planted"], "fault_alone": regression["fault_only"], "second_alone": regression["second_only"],
        "scored": bool(regression["planted"] > 0 and regression["fault_only"] > max(regression["second_only"], 0.0)),
    }


def diagnose(planting: Planting, dataset: Any) -> dict:
    """``attribute_run`` on the planted arm, timed, and where it ranks the planted group."""
    config = validate(planting.config)
    seed = planting.config["seeds"][0]
    run_name = f"planted s{seed}"
    wall, cpu = time.perf_counter(), time.process_time()
    rca, _ = attribute_run(config, run_name, dataset=dataset, by=(planting.by,), top_k=3, benchmark=planting.benchmark)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    ranking = rca.ranking_
    if planting.fault == "rule":
        hit = np.array([any(name in group for name in planting.expected.split("|")) for group in ranking["group"]], dtype=bool)
    else:
        hit = (ranking["group"] == planting.expected).to_numpy()
    rank = int(np.argmax(hit)) + 1 if hit.any() else None
    return {
        "rca_regression": rca.regression_, "rank": rank, "groups": len(ranking), "screened": len(rca.screened_),
        "top1": rank == 1, "top3": rank is not None and rank <= 3,
        "first": ranking["group"].iloc[0] if len(ranking) else None,
        "first_fraction": ranking["fraction"].iloc[0] if len(ranking) else np.nan,
        "planted_fraction": ranking["fraction"][hit].iloc[0] if hit.any() else np.nan,
        "cpu_s": cpu, "wall_s": wall,
    }


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    rows = []
    groups = list(results.groupby(["fault", "dataset"])) + [((f, "all"), g) for f, g in results.groupby("fault")]
    for (fault, dataset), group in groups:
        scored = group[group["scored"]]
        rows.append({
            "fault": fault, "dataset": dataset, "drawn": len(group), "scored": len(scored),
            "top1": scored["top1"].mean() if len(scored) else np.nan, "top3": scored["top3"].mean() if len(scored) else np.nan,
            "median_cpu_s": scored["cpu_s"].median(), "max_cpu_s": scored["cpu_s"].max(),
        })
    return pd.DataFrame(rows)


def _markdown(frame: pd.DataFrame) -> str:
    """A markdown table (floats to 3 decimals), without the optional tabulate dependency."""
    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scored", type=int, default=20, help="diagnoses per fault type (well-posed plantings)")
    parser.add_argument("--max-draws", type=int, default=60, help="plantings drawn per fault type at most")
    parser.add_argument("--faults", default="rater,rule,slice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write one row per planting to this CSV")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # data warnings (leakage, sparse raters) are known for these datasets
    rng = np.random.default_rng(args.seed)
    specs = {name: DatasetSpec(name=name) for name in RATER_DATASETS}
    specs["convabuse-raw"] = DatasetSpec(name="convabuse", binarize=False)
    data = {key: load_data(spec) for key, spec in specs.items()}
    makers = {"rater": rater_plantings, "rule": rule_plantings, "slice": slice_plantings}

    start_wall, start_cpu = time.perf_counter(), time.process_time()
    rows = []
    for fault in (f.strip() for f in args.faults.split(",")):
        scored = 0
        for i, planting in enumerate(itertools.islice(makers[fault](rng, data), args.max_draws), 1):
            dataset = data[planting.dataset]
            row = {"fault": fault, "dataset": planting.dataset, "planted": planting.what,
                   "seed": planting.config["seeds"][0], **alone(planting, dataset)}
            line = (f"[{fault} {i}] {planting.dataset:13s} {planting.what[:62]:62s} regression {row['regression']:+.4f} "
                    f"(fault alone {row['fault_alone']:+.4f}, second alone {row['second_alone']:+.4f})")
            if row["scored"]:
                row.update(diagnose(planting, dataset))
                scored += 1
                mark = "top-1" if row["top1"] else ("top-3" if row["top3"] else "MISS")
                line += (f": rank {row['rank']} of {row['groups']} ({mark}); first {str(row['first'])[:40]} "
                         f"({row['first_fraction']:.2f}); cpu {row['cpu_s']:.1f} s, wall {row['wall_s']:.1f} s")
            else:
                line += ": not well posed, not diagnosed"
            print(line, flush=True)
            rows.append(row)
            if scored == args.scored:
                break
    results = pd.DataFrame(rows)
    if args.out:
        results.to_csv(args.out, index=False)
    print()
    print(_markdown(summarize(results)))
    misses = results[results["scored"] & ~results["top1"].fillna(False).astype(bool)]
    if len(misses):
        print("\nmisses (top-1):")
        print(_markdown(misses[["fault", "dataset", "planted", "regression", "fault_alone", "second_alone", "rank", "first",
                                "first_fraction", "planted_fraction"]]))
    print(f"\nwhole benchmark: {time.perf_counter() - start_wall:.0f} s wall, {time.process_time() - start_cpu:.0f} s CPU "
          f"({int(results['scored'].sum())} diagnoses, {len(results)} plantings drawn)")


if __name__ == "__main__":
    main()
