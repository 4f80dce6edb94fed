from types import SimpleNamespace

import krippendorff
import pandas as pd
import pytest

from smo_impact.quality.raters import judgement_table, rater_table
from smo_impact.quality.training import training_label_quality
from smo_impact.treatments.aggregate import majority_vote
from smo_impact.treatments.base import LabelState


def test_quality_of_treated_training_labels_by_hand(toy_annotations):
    # Majority: t1 1, t2 0, t3 1, t4 0, t5 1. The "treated" labels flip t2 to 1.
    reference = majority_vote(toy_annotations, (0, 1), 1)
    treated = reference.copy()
    treated["t2"] = 1
    items = pd.DataFrame({"task": reference.index, "text": "x", "split": "train"})
    state = LabelState(items, toy_annotations, (0, 1), 1, labels=treated)
    metrics = training_label_quality(state, SimpleNamespace(untreated_labels=reference))

    assert metrics["quality/label_noise"] == pytest.approx(1 / 5)
    assert metrics["quality/false_positive_noise"] == pytest.approx(1 / 2)  # t2 of negatives t2, t4
    assert metrics["quality/false_negative_noise"] == 0.0
    # judgements equal to the training label: t1 5, t2 0, t3 3, t4 3, t5 4 -> 15 / 25
    assert metrics["quality/rater_accuracy"] == pytest.approx(15 / 25)
    matrix = toy_annotations.pivot(index="worker", columns="task", values="label").to_numpy(float)
    assert metrics["quality/krippendorff_alpha"] == pytest.approx(krippendorff.alpha(matrix, level_of_measurement="nominal"))
    expected_loo = rater_table(judgement_table(toy_annotations, (0, 1), 1))["rater_agreement"].mean()
    assert metrics["quality/rater_agreement_mean"] == pytest.approx(expected_loo)
    assert metrics["quality/judgements_per_item"] == 5.0


def test_fewer_judgements_change_alpha_but_not_noise(toy_annotations):
    reference = majority_vote(toy_annotations, (0, 1), 1)
    kept = toy_annotations[toy_annotations["worker"].isin(["w1", "w2", "w3"])]
    items = pd.DataFrame({"task": reference.index, "text": "x", "split": "train"})
    state = LabelState(items, kept, (0, 1), 1, labels=majority_vote(kept, (0, 1), 1))
    metrics = training_label_quality(state, SimpleNamespace(untreated_labels=reference))
    # w1, w2 label 1 0 1 1 1 and w3 1 0 1 0 1: only t4 splits (2-1), and its majority 1 differs from 0.
    assert metrics["quality/percent_agreement"] == pytest.approx((4 + 2 / 6) / 5)
    assert metrics["quality/label_noise"] == pytest.approx(1 / 5)
    assert metrics["quality/judgements_per_item"] == 3.0
    # coincidences o00 = 3, o11 = 10, o01 = o10 = 1 (n0 = 4, n1 = 11, n = 15):
    # alpha = 1 - (n - 1) * 2 / (2 * n0 * n1) = 1 - 14 * 2 / 88
    assert metrics["quality/krippendorff_alpha"] == pytest.approx(1 - 28 / 88)


def test_every_run_logs_quality_of_its_training_labels():
    from smo_impact.config import validate
    from smo_impact.runner.experiment import prepare
    from smo_impact.runner.run import execute_run
    from tests.conftest import make_text_dataset

    config = validate(
        {
            "name": "q",
            "dataset": {"name": "md-agreement"},  # replaced by the generated data below
            "arms": {"control": ["aggregate"], "noisy": ["aggregate", {"noise": {"rate": 0.3}}]},
            "seeds": [0],
            "evaluation": {"bootstrap": 0},
        }
    )
    data = make_text_dataset(n_items=200, workers_per_item=3, seed=0)
    _, context, specs, _ = prepare(config, dataset=data)
    metrics = {spec.arm: execute_run(spec, context).metrics for spec in specs}
    control, noisy = metrics["control"], metrics["noisy"]
    assert control["quality/label_noise"] == 0.0
    # The realized noise is the share of labels the noise step flipped.
    assert noisy["quality/label_noise"] == pytest.approx(noisy["treatment/label_change_rate"])
    assert 0.2 < noisy["quality/label_noise"] < 0.4
    # The judgements are untouched by label noise: alpha is the same; raters now match fewer labels.
    assert noisy["quality/krippendorff_alpha"] == control["quality/krippendorff_alpha"]
    assert noisy["quality/rater_accuracy"] < control["quality/rater_accuracy"]
    train = data.split_annotations("train")
    matrix = train.pivot(index="worker", columns="task", values="label").to_numpy(float)
    assert control["quality/krippendorff_alpha"] == pytest.approx(krippendorff.alpha(matrix, level_of_measurement="nominal"))
