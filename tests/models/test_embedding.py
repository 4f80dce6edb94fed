import numpy as np
import pytest

from smo_impact.models.base import DevSet
from smo_impact.models.embedding import EmbeddingFeaturizer, EmbeddingLogreg, EmbeddingMlp
from smo_impact.models.features import FeatureCache


def _featurizer(**params):
    return EmbeddingLogreg(EmbeddingLogreg.Params(encoder="tiny", **params)).featurizer()


def test_cache_key_changes_with_max_length_but_not_with_seed_or_head(text_dataset, tmp_path):
    cache = FeatureCache(directory=tmp_path)
    first = cache.get(text_dataset, _featurizer(max_length=32))
    # Every run of an experiment (any seed, any head parameter) asks for the same embeddings.
    for seed in (0, 1, 2):
        model = EmbeddingLogreg(EmbeddingLogreg.Params(encoder="tiny", max_length=32, C=0.1 * (seed + 1)))
        features = cache.get(text_dataset, model.featurizer())
        model.fit(features.rows(text_dataset.split("train")["task"]), text_dataset.split("train")["truth"].to_numpy(), seed=seed)
    assert (cache.stats.misses, cache.stats.memory_hits) == (1, 3)
    # A later process reads them from disk, identical.
    later = FeatureCache(directory=tmp_path)
    assert np.array_equal(later.get(text_dataset, _featurizer(max_length=32)).matrix, first.matrix)
    assert (later.stats.misses, later.stats.disk_hits) == (0, 1)
    # Changing what the encoder sees or outputs misses; batch size and device do not matter.
    key = FeatureCache.key
    assert key(text_dataset, _featurizer(max_length=16)) != key(text_dataset, _featurizer(max_length=32))
    assert key(text_dataset, _featurizer(pooling="cls")) != key(text_dataset, _featurizer())
    assert key(text_dataset, _featurizer(init_seed=1)) != key(text_dataset, _featurizer())
    assert key(text_dataset, _featurizer(embed_batch_size=7, device="cpu")) == key(text_dataset, _featurizer())
    assert key(text_dataset, EmbeddingMlp(EmbeddingMlp.Params(encoder="tiny")).featurizer()) == key(text_dataset, _featurizer())


def test_mean_pooling_ignores_padding_and_rows_are_unit_length():
    featurizer = EmbeddingFeaturizer("tiny", max_length=32, batch_size=8)
    alone = featurizer.embed(["kind people"])
    # In a batch with a longer text the short one is padded; its embedding must not change.
    batched = featurizer.embed(["kind people", "the weather in the city is awful today and people hate it"])
    assert np.allclose(alone[0], batched[0], atol=1e-5)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert batched.shape == (2, 64)


def test_soft_labels_for_logreg_are_weighted_duplicates():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] > 0).astype(int)
    params = EmbeddingLogreg.Params(encoder="tiny", C=10.0)
    hard = EmbeddingLogreg(params).fit(X, y, seed=0)
    one_hot = EmbeddingLogreg(params).fit(X, y, seed=0, soft_labels=y.astype(float))
    assert np.allclose(hard.classifier_.coef_, one_hot.classifier_.coef_, atol=1e-4)
    # Raters split 50/50 on every item: the only consistent answer is P(positive) = 0.5 everywhere.
    undecided = EmbeddingLogreg(params).fit(X, y, seed=0, soft_labels=np.full(200, 0.5))
    assert np.allclose(undecided.predict_proba(X)[:, 1], 0.5, atol=1e-3)


def test_mlp_head_learns_with_early_stopping_and_logs_curves(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 16)).astype(np.float32)
    y = (X[:, :3].sum(1) > 0).astype(int)
    model = EmbeddingMlp(EmbeddingMlp.Params(encoder="tiny", epochs=40, patience=3, hidden=32, learning_rate=1e-2))
    model.fit(X[:300], y[:300], seed=0, dev=DevSet(X[300:350], y[300:350]))
    accuracy = ((model.predict_proba(X[350:])[:, 1] >= 0.5) == y[350:]).mean()
    assert accuracy > 0.85
    assert model.metrics_["train/epochs_run"] < 40  # stopped early
    assert model.metrics_["train/best_epoch"] == model.metrics_["train/epochs_run"] - 3
    assert [s for s, _ in model.curves_["dev/loss"]] == [s for s, _ in model.curves_["train/epoch"]]
    model.save(tmp_path)
    from safetensors.torch import load_file

    assert set(load_file(tmp_path / "head.safetensors")) == {"0.weight", "0.bias", "3.weight", "3.bias"}


def test_logreg_head_is_saved_with_skops(tmp_path):
    import skops.io

    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 2, 50)
    model = EmbeddingLogreg(EmbeddingLogreg.Params(encoder="tiny")).fit(X, y, seed=0)
    model.save(tmp_path)
    path = tmp_path / "head.skops"
    assert skops.io.get_untrusted_types(file=path) == []  # plain scikit-learn types only
    loaded = skops.io.load(path)
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_balanced_class_weight_raises_minority_recall():
    """5% positives that overlap the negatives: unweighted, the head mostly says negative."""
    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.05).astype(int)
    X = (rng.normal(size=(2000, 8)) + 1.0 * y[:, None]).astype(np.float32)
    recall = {}
    for weighting in (None, "balanced"):
        params = EmbeddingMlp.Params(encoder="tiny", epochs=15, hidden=16, learning_rate=1e-2, class_weight=weighting)
        model = EmbeddingMlp(params).fit(X[:1500], y[:1500], seed=0)
        predicted = model.predict_proba(X[1500:])[:, 1] >= 0.5
        recall[weighting] = predicted[y[1500:] == 1].mean()
    assert recall[None] < 0.5 < recall["balanced"], recall


# -- K classes ---------------------------------------------------------------------------------
def _three_class_blobs(n=450, seed=3):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = np.array([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    return (centres[y] + rng.normal(scale=0.7, size=(n, 4))).astype(np.float32), y


def test_logreg_head_trains_three_classes_and_k_way_soft_labels():
    X, y = _three_class_blobs()
    params = EmbeddingLogreg.Params(encoder="tiny", C=10.0)
    hard = EmbeddingLogreg(params).fit(X, y, seed=0)
    assert list(hard.classes_) == [0, 1, 2] and hard.predict_proba(X).shape == (450, 3)
    assert (hard.predict_proba(X).argmax(1) == y).mean() > 0.9
    # One-hot vote shares train the same multinomial model as the hard labels.
    one_hot = EmbeddingLogreg(params).fit(X, y, seed=0, soft_labels=np.eye(3)[y])
    assert np.allclose(hard.classifier_.coef_, one_hot.classifier_.coef_, atol=1e-2)  # lbfgs tolerance
    # Raters split evenly over the three labels on every item: P = 1/3 everywhere.
    undecided = EmbeddingLogreg(params).fit(X, y, seed=0, soft_labels=np.full((450, 3), 1 / 3))
    assert np.allclose(undecided.predict_proba(X), 1 / 3, atol=1e-3)


def test_mlp_head_has_k_outputs_and_stops_on_k_class_dev_scores():
    X, y = _three_class_blobs()
    model = EmbeddingMlp(EmbeddingMlp.Params(encoder="tiny", epochs=30, patience=3, hidden=16, learning_rate=1e-2))
    model.fit(X[:300], y[:300], seed=0, dev=DevSet(X[300:375], y[300:375]), n_classes=3)
    proba = model.predict_proba(X[375:])
    assert proba.shape == (75, 3) and list(model.classes_) == [0, 1, 2]
    assert (proba.argmax(1) == y[375:]).mean() > 0.85
    assert 0 < model.curves_["dev/macro_f1"][-1][1] <= 1
    soft = EmbeddingMlp(EmbeddingMlp.Params(encoder="tiny", epochs=2, hidden=8))
    soft.fit(X[:300], y[:300], seed=0, soft_labels=np.full((300, 3), 1 / 3), n_classes=3)
    assert soft.predict_proba(X[:5]).shape == (5, 3)
