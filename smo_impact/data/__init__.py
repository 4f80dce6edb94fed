"""Annotation data: the data model, loaders and the built-in dataset catalog."""

from smo_impact.data.schema import AnnotationSet

__all__ = ["AnnotationSet"]
