"""smo-impact: when we change how humans label data, what happens to the model?

Importing the package is cheap: heavy libraries (mlflow, torch, transformers) are imported
only by the modules that need them.
"""

__version__ = "0.1.0"
