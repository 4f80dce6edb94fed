"""Tracking is a thin edge: only ``mlflow_tracker`` imports mlflow."""

from smo_impact.tracking.base import RunStatus, Tracker

__all__ = ["RunStatus", "Tracker"]
