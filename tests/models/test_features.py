import numpy as np

from smo_impact.models.features import FeatureCache
from smo_impact.models.tfidf_logreg import TfidfLogreg


def test_cache_hits_in_memory_then_on_disk_and_misses_on_param_change(text_dataset, tmp_path):
    featurizer = TfidfLogreg(TfidfLogreg.Params()).featurizer()
    first = FeatureCache(directory=tmp_path)
    a = first.get(text_dataset, featurizer)
    first.get(text_dataset, featurizer)
    assert (first.stats.misses, first.stats.memory_hits) == (1, 1)

    second = FeatureCache(directory=tmp_path)  # a later process
    b = second.get(text_dataset, featurizer)
    assert (second.stats.misses, second.stats.disk_hits) == (0, 1)
    assert (a.matrix != b.matrix).nnz == 0 and list(a.tasks) == list(b.tasks)

    other = TfidfLogreg(TfidfLogreg.Params(ngram_max=1)).featurizer()
    second.get(text_dataset, other)
    assert second.stats.misses == 1
    # classifier-only params do not change the features
    assert FeatureCache.key(text_dataset, TfidfLogreg(TfidfLogreg.Params(C=0.5)).featurizer()) == FeatureCache.key(text_dataset, featurizer)


def test_corrupt_cache_file_is_detected_and_rebuilt(text_dataset, tmp_path):
    featurizer = TfidfLogreg(TfidfLogreg.Params()).featurizer()
    FeatureCache(directory=tmp_path).get(text_dataset, featurizer)
    (npz,) = tmp_path.glob("*.npz")
    npz.write_bytes(npz.read_bytes()[:100])  # truncated
    cache = FeatureCache(directory=tmp_path)
    features = cache.get(text_dataset, featurizer)
    assert cache.stats.rebuilt_corrupt == 1 and cache.stats.misses == 1
    assert features.matrix.shape[0] == len(text_dataset.items)
    assert FeatureCache(directory=tmp_path).get(text_dataset, featurizer).matrix.shape == features.matrix.shape


def test_model_learns_separable_task(text_dataset):
    from smo_impact.models.features import FeatureCache

    model = TfidfLogreg(TfidfLogreg.Params())
    features = FeatureCache(disk=False).get(text_dataset, model.featurizer())
    train = text_dataset.split("train")
    test = text_dataset.split("test")
    model.fit(features.rows(train["task"]), train["truth"].to_numpy(), seed=0)
    proba = model.predict_proba(features.rows(test["task"]))[:, 1]
    accuracy = ((proba >= 0.5).astype(int) == test["truth"].to_numpy()).mean()
    assert accuracy > 0.9
