"""The model contract the runner trains through.

A model class has ``name``, a pydantic ``Params``, ``featurizer()`` (features shared by every run
through the feature cache), ``fit(X, y, seed)``, ``predict_proba(X)`` and ``classes_``.

Optional extras a model asks for by listing them in ``fit_inputs``; the runner then passes them to
``fit`` as keyword arguments:

- ``"dev"``: a :class:`DevSet` (dev-split features and reference labels) for early stopping;
- ``"soft_labels"``: P(positive) per training item when the arm produced a vote distribution
  (``LabelState.soft_labels``); absent otherwise.

After ``fit`` a model may expose ``metrics_`` (logged as run metrics), ``curves_`` (metric name ->
[(step, value)], logged as metric history) and ``save(directory)`` (the trained model in a safe
format: safetensors / ``save_pretrained`` / skops, never pickle), logged as the ``model/`` artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DevSet:
    """Dev-split features and their reference labels (majority of all raters, untreated)."""

    X: Any
    y: np.ndarray
