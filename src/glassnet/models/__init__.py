"""Whole networks: the containers that hold layers and run them, and named architectures.

- ``sequential.py``: ``Sequential``, a chain of layers with forward, backward, and the ``fit``,
  ``evaluate``, ``predict`` methods (which hand the model to ``glassnet.training``);
- ``summary.py``: a model's layer table, as text and as HTML;
- ``presets.py``: named architectures (``lenet``, ``mlp``, ``simple``, ``colour``, ...) built for a data set.

Imports: foundations, nn, training.
"""
from . import presets
from .sequential import Sequential
