"""Classifiers trained in every run, by registered name.

A model factory declares ``Params`` (validated from the config), ``featurizer()`` (whose output
the feature cache shares across runs) and ``fit``/``predict_proba`` on those features.
Models that need torch import it inside their own module, never here.
"""

from smo_impact.models.embedding import EmbeddingLogreg, EmbeddingMlp
from smo_impact.models.features import FeatureCache, Features
from smo_impact.models.finetune import Finetune
from smo_impact.models.tfidf_logreg import TfidfLogreg
from smo_impact.registry import Registry

MODELS: Registry = Registry("model")
MODELS.register(TfidfLogreg.name)(TfidfLogreg)
for _cls in (EmbeddingLogreg, EmbeddingMlp, Finetune):  # torch/transformers load inside fit
    MODELS.register(_cls.name)(_cls)

__all__ = ["MODELS", "FeatureCache", "Features"]
