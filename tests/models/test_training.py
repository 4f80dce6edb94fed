import math

import numpy as np
import pytest
import torch

from smo_impact.models.training import (
    History,
    balanced_class_weights,
    length_grouped_batches,
    seeded,
    soft_cross_entropy,
    target_distribution,
)


def test_soft_label_loss_equals_hand_computed_value():
    # Row 1: logits (0, ln 3) -> softmax (1/4, 3/4); votes 2 of 5 say offensive -> target (0.6, 0.4).
    #   loss = -(0.6 ln 1/4 + 0.4 ln 3/4) = 0.6 * 1.386294 + 0.4 * 0.287682 = 0.946850
    # Row 2: logits (2, 0), hard target (1, 0): loss = ln(1 + e^-2) = 0.126928
    logits = torch.tensor([[0.0, math.log(3.0)], [2.0, 0.0]])
    targets = torch.as_tensor(target_distribution(np.array([0, 0]), np.array([0.4, 0.0])))
    assert np.allclose(targets.numpy(), [[0.6, 0.4], [1.0, 0.0]])
    assert float(soft_cross_entropy(logits, targets)) == pytest.approx((0.946850 + 0.126928) / 2, abs=1e-6)


def test_one_hot_targets_give_the_usual_cross_entropy():
    logits = torch.tensor([[0.3, -1.2], [0.5, 2.0], [-0.1, 0.0]])
    y = np.array([0, 1, 1])
    expected = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y))
    assert float(soft_cross_entropy(logits, torch.as_tensor(target_distribution(y, None)))) == pytest.approx(float(expected))


def test_balanced_class_weights_match_scikit_learn_and_weigh_the_loss():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0, 0, 0, 1])
    weights = balanced_class_weights(target_distribution(y, None))
    assert np.allclose(weights, compute_class_weight("balanced", classes=np.array([0, 1]), y=y))  # 2/3, 2
    # Same toy batch as above: row 1 (soft target 0.6/0.4) weighs 0.6 w0 + 0.4 w1, row 2 weighs w0.
    logits = torch.tensor([[0.0, math.log(3.0)], [2.0, 0.0]])
    targets = torch.as_tensor(target_distribution(np.array([0, 0]), np.array([0.4, 0.0])))
    w = torch.tensor([0.5, 3.0])
    expected = ((0.6 * 0.5 + 0.4 * 3.0) * 0.946850 + 0.5 * 0.126928) / 2
    assert float(soft_cross_entropy(logits, targets, w)) == pytest.approx(expected, abs=1e-6)


def test_soft_labels_must_be_probabilities():
    with pytest.raises(ValueError, match=r"soft labels must be probabilities in \[0, 1\]"):
        target_distribution(np.array([0, 1]), np.array([0.5, np.nan]))


def test_length_grouped_batches_cover_every_item_once_and_pad_little():
    lengths = np.random.default_rng(0).integers(3, 100, size=1000)
    batches = length_grouped_batches(lengths, 10, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    # Same seed, same batches; a batch spans a narrow length range compared with random batching.
    again = length_grouped_batches(lengths, 10, np.random.default_rng(1))
    assert all((a == b).all() for a, b in zip(batches, again))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    random_spread = np.mean([np.ptp(lengths[i : i + 10]) for i in range(0, 1000, 10)])
    assert spread < random_spread / 5
    # Inference order: deterministic, longest first.
    first = length_grouped_batches(np.array([2, 9, 5]), 2, None)
    assert [b.tolist() for b in first] == [[1, 2], [0]]


def test_seeded_repeats_draws_and_leaves_the_global_rng_alone():
    before = torch.random.get_rng_state()
    with seeded(7):
        a = torch.rand(3)
    with seeded(7):
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_history_curves_put_dev_metrics_on_the_step_that_ended_each_epoch():
    history = History(step_loss=[0.9, 0.7, 0.6, 0.5], epochs=[{"dev/loss": 0.8}, {"dev/loss": 0.6}], epoch_end_steps=[2, 4], best_epoch=2)
    curves = history.curves()
    assert curves["train/loss"] == [(1, 0.9), (2, 0.7), (3, 0.6), (4, 0.5)]
    assert curves["dev/loss"] == [(2, 0.8), (4, 0.6)]
    assert curves["train/epoch"] == [(2, 1.0), (4, 2.0)]
    assert history.metrics()["train/epochs_run"] == 2.0


def test_targets_for_k_classes_are_one_hot_or_the_vote_shares():
    from smo_impact.models.training import target_distribution

    assert np.array_equal(target_distribution(np.array([2, 0]), None, 3), [[0, 0, 1], [1, 0, 0]])
    shares = np.array([[0.5, 0.25, 0.25]])
    assert np.array_equal(target_distribution(np.array([0]), shares, 3), shares.astype(np.float32))
    with pytest.raises(ValueError, match="3-way distributions"):
        target_distribution(np.array([0]), np.array([[0.5, 0.6, 0.0]]), 3)


def test_k_class_dev_scores_are_the_k_class_metrics():
    from sklearn.metrics import f1_score, log_loss

    from smo_impact.models.training import dev_scores

    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.3, 0.5], [0.5, 0.4, 0.1]])
    y = np.array([0, 1, 2, 1])
    got = dev_scores(proba, y)
    assert got["dev/loss"] == pytest.approx(log_loss(y, proba))
    assert got["dev/accuracy"] == 0.75
    assert got["dev/macro_f1"] == pytest.approx(f1_score(y, proba.argmax(1), average="macro"))


def test_train_epochs_reports_every_step_to_the_callers_bar_and_draws_none_of_its_own(monkeypatch):
    import rich.progress

    from smo_impact.models.training import report_training_progress, train_epochs

    module = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    x, target = torch.randn(8, 2), torch.tensor([[1.0, 0.0]] * 8)

    def batches(epoch):  # 4 batches of 2 per epoch
        return [((x[i : i + 2], target[i : i + 2]), 2) for i in range(0, 8, 2)]

    def loss_of(m, batch):
        return soft_cross_entropy(m(batch[0]), batch[1])

    def no_bar(*args, **kwargs):
        raise AssertionError("train_epochs drew a bar of its own next to the caller's")

    monkeypatch.setattr(rich.progress, "Progress", no_bar)
    calls = []
    with report_training_progress(lambda *args: calls.append(args)):
        history = train_epochs(module, batches, loss_of, optimizer, None, 3, total_steps=12)
    assert calls == [(step, 12, (step - 1) // 4 + 1, 3) for step in range(1, 13)]
    assert len(history.step_loss) == 12
    # Outside the context nothing is reported (and a bar of its own is drawn).
    monkeypatch.undo()
    train_epochs(module, batches, loss_of, optimizer, None, 1, total_steps=4)
    assert len(calls) == 12


def test_quiet_training_progress_draws_no_bar(monkeypatch):
    import contextvars

    import rich.progress

    from smo_impact.models.training import quiet_training_progress, train_epochs

    def no_bar(*args, **kwargs):
        raise AssertionError("a quiet process drew a training bar")

    monkeypatch.setattr(rich.progress, "Progress", no_bar)
    module = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    batch = ((torch.randn(4, 2), torch.tensor([[1.0, 0.0]] * 4)), 4)

    def quietly():  # in a context of its own, as a pool worker's process is
        quiet_training_progress()
        return train_epochs(module, lambda epoch: [batch], lambda m, b: soft_cross_entropy(m(b[0]), b[1]), optimizer, None, 2)

    assert len(contextvars.copy_context().run(quietly).step_loss) == 2
