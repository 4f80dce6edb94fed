"""Annotation data: the data model, loaders, validation and the built-in dataset catalog.

``load_data(spec)`` loads what a config's ``dataset`` section names (a built-in dataset or your
own files); ``load_dataset(name)`` loads a built-in dataset as released.
"""

from smo_impact.data.schema import AnnotationSet
from smo_impact.data.validation import DataWarning

__all__ = ["AnnotationSet", "DataWarning"]
