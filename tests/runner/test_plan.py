from smo_impact.config import validate
from smo_impact.runner.plan import plan_runs

RAW = {
    "name": "t",
    "dataset": {"name": "md-agreement"},
    "arms": {"noisy": ["aggregate", {"noise": {"rate": 0.1}}], "control": ["aggregate"]},
    "sweep": {"noisy": {"noise.rate": [0.1, 0.3], "model.C": [1.0, 2.0]}},
    "seeds": [3, 4],
}


def test_plan_expands_arms_grid_and_seeds_control_first():
    runs = plan_runs(validate(RAW))
    assert len(runs) == 2 + 2 * 2 * 2
    assert [r.arm for r in runs[:2]] == ["control", "control"]
    names = [r.name for r in runs]
    assert "noisy rate=0.3 C=2.0 s4" in names
    assert len(set(names)) == len(names)
    run = next(r for r in runs if r.name == "noisy rate=0.3 C=2.0 s4")
    assert run.long_name == "md-agreement:arm=noisy,noise.rate=0.3,model.C=2.0,seed=4"
    assert run.named(run.long_name) and run.named("noisy rate=0.3 C=2.0 s4") and not run.named("noisy s4")
    assert run.steps[1].params["rate"] == 0.3 and run.model.params["C"] == 2.0
    assert run.steps[0].params["method"] == "majority" and run.steps[0].params["tie"] == "positive"


def test_run_keys_are_stable_and_distinct():
    config = validate(RAW)
    a = [r.key(config, "digest") for r in plan_runs(config)]
    b = [r.key(config, "digest") for r in plan_runs(validate(dict(RAW)))]
    assert a == b and len(set(a)) == len(a)
    assert plan_runs(config)[0].key(config, "other-digest") != a[0]
