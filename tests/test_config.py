import os
from pathlib import Path

import pytest
import yaml

from smo_impact.config import apply_override, load_config, load_raw, validate
from smo_impact.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
BLOCKS = sorted((REPO / "configs").rglob("*.yaml"))
EXPERIMENTS = sorted((REPO / "experiments").rglob("*.yaml"))

BASE = {
    "name": "t",
    "dataset": {"name": "md-agreement"},
    "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.1}}]},
    "sweep": {"noisy": {"noise.rate": [0.1, 0.2]}},
    "seeds": 2,
}


def _yaml_on_disk(top: str) -> set[Path]:
    """Every *.yaml / *.yml under ``top`` at any depth, found by os.walk rather than the globs that
    parametrize the tests below, so a file those globs miss (a .yml, say) fails the check."""
    found = set()
    for dirpath, _dirs, files in os.walk(REPO / top):
        found.update(Path(dirpath) / f for f in files if f.endswith((".yaml", ".yml")))
    return found


def test_found_every_yaml_recursively():
    # Every YAML file under configs/ is validated as a building block and every one under
    # experiments/ as a full experiment, and nothing else is.
    assert set(BLOCKS) == _yaml_on_disk("configs")
    assert set(EXPERIMENTS) == _yaml_on_disk("experiments")
    # Lower bounds from the tree at commit 91325d7: 23 blocks (8 datasets, 5 models, 2 targets,
    # 2 treatments, 6 guidelines) and 10 experiments. A drop means configs went missing.
    assert len(BLOCKS) >= 23
    assert len(EXPERIMENTS) >= 10


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_experiment_validates(path):
    config = load_config(path)
    assert config.control in config.arms


@pytest.mark.parametrize("path", BLOCKS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_building_block_is_valid_yaml_and_composes(path, tmp_path):
    """Each block is used the way experiments use it, through `from:`."""
    kind = path.parent.name
    base = dict(BASE)
    ref = {"from": str(path)}
    if kind == "datasets":
        base["dataset"] = ref
    elif kind == "models":
        base["model"] = ref
    elif kind == "treatments":
        block = yaml.safe_load(path.read_text())
        needs_labels = "aggregate" not in block
        base["arms"] = {"control": ["aggregate"], "x": (["aggregate"] if needs_labels else []) + [ref]}
        base["sweep"] = {}
    elif kind == "guidelines":
        # A guideline relabels raw judgements, so it comes before the aggregation step.
        block = yaml.safe_load(path.read_text())
        assert set(block) == {"guideline"}
        base["arms"] = {"control": ["aggregate"], "x": [ref, "aggregate"]}
        base["sweep"] = {}
    elif kind == "targets":
        # Quality targets are not composed into experiments: `smo-impact audit --targets` reads them.
        from smo_impact.quality.targets import load_targets

        assert len(load_targets(path).targets) == len(yaml.safe_load(path.read_text())["targets"]) > 0
        return
    else:
        pytest.fail(f"unknown building-block folder {kind}")
    cfg = tmp_path / "e.yaml"
    cfg.write_text(yaml.safe_dump(base))
    load_config(cfg)


def test_seeds_shorthand_and_defaults():
    config = validate(BASE)
    assert config.seeds == [0, 1]
    assert config.model.name == "tfidf_logreg"
    assert config.model.params["C"] == 4.0  # defaults are resolved into the config
    assert config.arms["control"][0].params["tie"] == "positive"  # step defaults are resolved too


def test_seed_errors_name_the_rule_and_the_fix():
    with pytest.raises(ConfigError) as info:
        validate({**BASE, "seeds": 0})
    assert info.value.problems == ["seeds: seeds must be a positive count or a list of ints, e.g. 3 or [0, 1, 2] (got 0)"]
    with pytest.raises(ConfigError) as info:
        validate({**BASE, "seeds": [3, 1, 3, 1, 2]})
    assert info.value.problems == ["seeds: seeds must be distinct; [1, 3] repeated: list each seed once (got [3, 1, 3, 1, 2])"]


def test_reports_every_problem_at_once_with_paths_and_allowed_values():
    raw = {
        **BASE,
        "evaluation": {"split": "validation"},
        "arms": {
            "control": ["aggregate"],
            "noisy": ["aggregate", {"label_nosie": {"rate": 0.1}}],
            "loud": ["aggregate", {"noise": {"rate": 1.5, "colour": "red"}}],
        },
        "sweep": {"noisy": {"noise.rate": [0.1]}, "loud": {"noise.sigma": [1]}},
        "model": {"name": "tfidf_logreg", "params": {"C": -1}},
    }
    raw.pop("evaluation")
    with pytest.raises(ConfigError) as info:
        validate(raw)
    problems = info.value.problems
    text = "\n".join(problems)
    assert "arms.noisy[1]: Unknown treatment 'label_nosie'. Did you mean 'noise'? Available: acquire, aggregate, budget, clean, guideline, model_rater, noise, rater_pool, simulate_pool" in text
    assert "arms.loud[1].noise.rate: Input should be less than or equal to 1" in text
    assert "arms.loud[1].noise.colour: unknown key" in text
    assert "model.params.C: Input should be greater than 0" in text
    assert "sweep.noisy.noise.rate: arm 'noisy' has no step 'noise'" in text
    assert "sweep.loud.noise.sigma: 'noise' has no parameter 'sigma'; parameters: instance, level, rate, slice, transitions" in text
    assert len(problems) == 6


def test_structural_and_registry_problems_are_reported_together():
    """A structural error (seeds: 'x') used to stop validate() before the registry checks, so the
    unknown treatment came only on the next try (STYLE.md practice 5); this was a strict xfail."""
    with pytest.raises(ConfigError) as info:
        validate({**BASE, "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noize": {}}]}, "sweep": {},
                  "seeds": "x", "model": {"name": "tfidf_logregg"}})
    assert "seeds: Input should be a valid list (got 'x')" in info.value.problems
    assert any(p.startswith("arms.noisy[1]: Unknown treatment 'noize'") for p in info.value.problems)
    assert any(p.startswith("model.name: Unknown model 'tfidf_logregg'") for p in info.value.problems)
    assert len(info.value.problems) == 3  # nothing reported twice


def test_structural_errors_name_dotted_path_and_allowed_values():
    with pytest.raises(ConfigError) as info:
        validate({**BASE, "evaluation": {"split": "validation"}, "tracking": {"experimnt": "x"}})
    text = "\n".join(info.value.problems)
    assert "evaluation.split: Input should be 'test' or 'dev'" in text
    assert "tracking.experimnt: unknown key" in text


def test_unknown_dataset_did_you_mean():
    with pytest.raises(ConfigError, match=r"dataset.name: Unknown dataset 'md-agrement'. Did you mean 'md-agreement'\?"):
        validate({**BASE, "dataset": {"name": "md-agrement"}})


def test_empty_arm_and_missing_control():
    with pytest.raises(ConfigError) as info:
        validate({**BASE, "arms": {"baseline": []}, "sweep": {}})
    text = "\n".join(info.value.problems)
    assert "control: arm 'control' is not defined; arms: baseline" in text
    assert "arms.baseline: an arm needs at least one treatment step" in text


def test_overrides_and_includes(tmp_path):
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "model.yaml").write_text("name: tfidf_logreg\nparams: {C: 2.0, ngram_max: 1}\n")
    exp = {**BASE, "model": {"from": "blocks/model.yaml", "params": {"C": 3.0}}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(exp))
    config = load_config(path, ["seeds=[5]", "sweep.noisy.noise\\.rate=[0.3]"] [:1] + ["arms.noisy.1.noise.rate=0.25"])
    assert config.model.params["C"] == 3.0 and config.model.params["ngram_max"] == 1
    assert config.seeds == [5]
    assert config.arms["noisy"][1].params["rate"] == 0.25


def test_override_errors():
    data = {"a": [1, 2], "b": 3}
    with pytest.raises(ConfigError, match="must look like path.to.key=value"):
        apply_override(data, "a.b")
    with pytest.raises(ConfigError, match="'a.5' is not an index of a 2-item list"):
        apply_override(data, "a.5=1")
    with pytest.raises(ConfigError, match="'b' is a value, not a mapping"):
        apply_override(data, "b.c=1")


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\narms: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml line \d+: invalid YAML"):
        load_raw(bad)
    with pytest.raises(ConfigError, match="config file .*nope.yaml not found"):
        load_raw(tmp_path / "nope.yaml")


def test_config_hash_is_stable_and_sensitive():
    a = validate(BASE)
    b = validate(dict(BASE))
    c = validate({**BASE, "seeds": [0, 1, 2]})
    assert a.config_hash() == b.config_hash() != c.config_hash()


def test_judgement_steps_after_aggregation_are_config_errors():
    raw = {**BASE, "arms": {"control": ["aggregate"],
                            "late": ["aggregate", {"rater_pool": {"by": "per_item", "k": 1}}, {"noise": {"level": "judgement"}}],
                            "early": [{"clean": {}}, "aggregate"]}, "sweep": {}}
    with pytest.raises(ConfigError) as info:
        validate(raw)
    assert info.value.problems == [
        "arms.late[1]: 'rater_pool' works on individual judgements; put it before the 'aggregate' step",
        "arms.late[2]: 'noise' works on individual judgements; put it before the 'aggregate' step",
        "arms.early[0]: 'clean' works on aggregated labels; put an 'aggregate' step before it",
    ]


# -- hostile YAML: resource bounds -------------------------------------------------------------
MINIMAL = "dataset: {name: md-agreement}\narms: {control: [aggregate]}\n"


def _laughs(levels: int, indent: str = "") -> str:
    """A 'billion laughs' block: each level lists nine aliases of the one before."""
    lines = [f'{indent}l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


HOSTILE = {
    "alias_bomb": (_laughs(9) + MINIMAL, r"l5: YAML aliases \(\*name\) expand this value to more than 100000 values"),
    "alias_bomb_in_where": (
        "dataset:\n  name: md-agreement\n  where:\n" + _laughs(9, "    ") + "arms: {control: [aggregate]}\n",
        r"dataset.where.l5: YAML aliases \(\*name\) expand this value to more than 100000 values",
    ),
    "recursive_alias": (MINIMAL + "sweep: &s {control: {model.C: [*s]}}\n", r"line 3: sweep.control.model.C\[0\]: a YAML alias refers to a value that contains it"),
    "deep_nesting": (MINIMAL + "description: " + "[" * 500 + "]" * 500 + "\n", r"description(\[0\])+\[?0?\.\.\.: values nested more than 50 levels deep"),
    "flat_list": (MINIMAL + "seeds: [" + ", ".join(["1"] * 150_000) + "]\n", r"seeds: holds more than 100000 values"),
    "repeated_seeds": (MINIMAL + "seeds: [" + ", ".join(["7"] * 90_000) + "]\n", r"seeds: seeds must be distinct; \[7\] repeated"),
    "huge_integer": (MINIMAL + "seeds: [0, " + "9" * 5000 + "]\n", r"line 3: seeds\[1\]: an integer written with 5000 digits"),
    "over_1_mb": (MINIMAL + ("# padding\n" * 110_000), r"is 1.1 MB; a config file may be at most 1 MB"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_yaml_fails_fast_in_bounded_memory(name, tmp_path):
    """Each hostile document is refused with one ConfigError before it grows: well under 10 s and
    1 GB (measured figures are printed; run with -s to see them)."""
    import time
    import tracemalloc

    import smo_impact.data.catalog, smo_impact.models, smo_impact.treatments  # noqa: F401 (import time is not the input's)

    text, message = HOSTILE[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    elapsed = time.perf_counter() - start
    tracemalloc.start()  # a second pass: tracing slows Python down about threefold
    try:
        with pytest.raises(ConfigError, match=message):
            load_config(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"{name}: {len(text) / 1e6:.2f} MB of YAML refused in {elapsed:.2f} s, peak {peak / 1e6:.1f} MB traced")
    # Time is a benchmark figure (printed), not a test: the bound only catches runaway expansion
    # (before the bounds, the alias bomb ran past 120 s); memory is what the bounds guarantee.
    assert elapsed < 120 and peak < 1e9


def test_includes_are_bounded_too(tmp_path):
    (tmp_path / "one.yaml").write_text("aggregate: {}\n")
    (tmp_path / "many.yaml").write_text("[" + ", ".join(["1"] * 900) + "]\n")
    many_includes = MINIMAL + "description: [" + ", ".join(["{from: one.yaml}"] * 1001) + "]\n"
    (tmp_path / "a.yaml").write_text(many_includes)
    with pytest.raises(ConfigError, match=r"a.yaml: more than 1000 'from:' includes; a config needs far fewer"):
        load_raw(tmp_path / "a.yaml")
    big_includes = MINIMAL + "description: [" + ", ".join(["{from: many.yaml}"] * 200) + "]\n"
    (tmp_path / "b.yaml").write_text(big_includes)
    with pytest.raises(ConfigError, match=r"b.yaml: 'from:' includes expand the config to more than 100000 values"):
        load_raw(tmp_path / "b.yaml")


def test_override_values_are_bounded():
    bomb = "{" + _laughs(9).replace("\n", ", ").rstrip(", ") + "}"
    with pytest.raises(ConfigError, match=r"override dataset.where: .*expand this value to more than 100000 values"):
        apply_override({"dataset": {}}, f"dataset.where={bomb}")


def test_duplicate_keys_are_errors_naming_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(
        "dataset:\n  name: md-agreement\n  name: hs-brexit\n"  # lines 2, 3
        "arms:\n  control: [aggregate]\n"
        "sweep: {control: {model.C: [1]}}\n"
        "model: {params: {C: 1, C: 2}}\n"  # line 7
        "<<: {description: merged keys may repeat explicit ones}\ndescription: this one wins\n"
    )
    with pytest.raises(ConfigError) as info:
        load_raw(path)
    assert info.value.problems == [
        "dataset.name: key 'name' appears twice, at lines 2 and 3; YAML would silently keep the last: remove one",
        "model.params.C: key 'C' appears twice, at lines 7 and 7; YAML would silently keep the last: remove one",
    ]


def test_non_finite_numbers_are_refused_by_dotted_key():
    raw = {
        **BASE,
        "sweep": {"noisy": {"noise.rate": [0.1, float("nan")]}},
        "evaluation": {"threshold": float("nan"), "gates": {"max_drop": {"test/f1": float("inf")}}},
        "model": {"params": {"C": float("-inf")}},
    }
    with pytest.raises(ConfigError) as info:
        validate(raw)
    assert info.value.problems == [
        "sweep.noisy.noise.rate[1]: .nan is not a finite number; use a finite value",
        "evaluation.threshold: .nan is not a finite number; use a finite value",
        "evaluation.gates.max_drop.test/f1: .inf is not a finite number; use a finite value",
        "model.params.C: -.inf is not a finite number; use a finite value",
    ]


def test_non_finite_override_is_refused(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(BASE))
    with pytest.raises(ConfigError, match=r"model.params.C: .inf is not a finite number"):
        load_config(path, ["model.params.C=.inf"])


def test_seeds_must_fit_numpy_seed_sequence():
    with pytest.raises(ConfigError) as info:
        validate({**BASE, "seeds": [3, -1, 2**32, 2**32 - 1]})
    assert info.value.problems == [
        "seeds: a seed must be an integer in [0, 4294967295] (numpy.random.SeedSequence's range); got -1, 4294967296 "
        "(got [3, -1, 4294967296, 4294967295])"
    ]


def test_planned_runs_are_bounded_by_execution_max_runs():
    raw = {**BASE, "seeds": 3, "execution": {"max_runs": 5}}  # 2 arms: control 1 + noisy 2 grid points
    with pytest.raises(ConfigError) as info:
        validate(raw)
    assert info.value.problems == [
        "execution.max_runs: the config plans 9 runs (3 seeds x control 1 + noisy 2 grid points), more than "
        "execution.max_runs=5; if that is intended, raise the limit with --set execution.max_runs=9 (or run --yes)"
    ]
    assert len(validate(raw, allow_many_runs=True).seeds) == 3
    assert validate({**raw, "execution": {"max_runs": 9}}).execution.max_runs == 9
    with pytest.raises(ConfigError, match=r"execution.max_runs: Input should be less than or equal to 100000"):
        validate({**raw, "execution": {"max_runs": 100_001}})


def test_messages_quote_at_most_about_100_characters_of_a_user_value(tmp_path):
    """A name, key or value may be megabytes long; a message quotes ~100 characters of it."""
    long = "x" * 5000
    configs = [
        {**BASE, "arms": {"control": ["aggregate"], long: ["aggregate"], "n": ["aggregate", {long: {}}]}, "sweep": {}},
        {**BASE, "arms": {"control": ["aggregate"], "n": ["aggregate", {"noise": {"rate": long, long: 1}}]}, "sweep": {}},
        {**BASE, long: 1, "control": long},
        {**BASE, "sweep": {long: {"noise.rate": [0.1]}, "noisy": {f"noise.{long}": [1], f"{long}.rate": [1]}}},
        {**BASE, "dataset": {"name": "mine", "path": "x.csv", "labels": [0, 1], "positive_label": long}},
        {**BASE, "evaluation": {"gates": {"max_drop": {f"test/{long}": 0.1}, "require_significance": True}}},
        {**BASE, "arms": {"control": ["aggregate"], "n": ["aggregate", {"noise": long}]}, "sweep": {}},
    ]
    for raw in configs:
        with pytest.raises(ConfigError) as info:
            validate(raw)
        for problem in info.value.problems:
            assert "x" * 101 not in problem and len(problem) < 600, problem[:300]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**BASE, "model": {"from": long}}))
    for load in (lambda: load_raw(path), lambda: load_raw(path, [f"{long}={long}"]), lambda: load_raw(path, [long])):
        with pytest.raises(ConfigError) as info:
            load()
        assert "x" * 101 not in str(info.value)
