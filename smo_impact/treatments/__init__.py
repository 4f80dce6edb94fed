"""Operational treatments: the levers applied, in order, by an experiment arm.

Every treatment registered here can be named in an arm of an experiment config.
"""

from smo_impact.registry import Registry
from smo_impact.treatments.acquire import Acquire
from smo_impact.treatments.aggregate import Aggregate
from smo_impact.treatments.base import LabelState, Treatment, TreatmentParams
from smo_impact.treatments.budget import Budget
from smo_impact.treatments.clean import Clean
from smo_impact.treatments.guideline import Guideline
from smo_impact.treatments.model_rater import ModelRater
from smo_impact.treatments.noise import Noise
from smo_impact.treatments.rater_pool import RaterPool
from smo_impact.treatments.simulate import SimulatePool

TREATMENTS: Registry = Registry("treatment")
for _cls in (Acquire, Aggregate, Budget, Clean, Guideline, ModelRater, Noise, RaterPool, SimulatePool):
    TREATMENTS.register(_cls.name)(_cls)

__all__ = ["TREATMENTS", "LabelState", "Treatment", "TreatmentParams"]
