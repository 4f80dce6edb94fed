"""Operational treatments: the levers applied, in order, by an experiment arm.

Every treatment registered here can be named in an arm of an experiment config.
"""

from smo_impact.registry import Registry
from smo_impact.treatments.aggregate import Aggregate
from smo_impact.treatments.base import LabelState, Treatment, TreatmentParams
from smo_impact.treatments.noise import Noise

TREATMENTS: Registry = Registry("treatment")
for _cls in (Aggregate, Noise):
    TREATMENTS.register(_cls.name)(_cls)

__all__ = ["TREATMENTS", "LabelState", "Treatment", "TreatmentParams"]
