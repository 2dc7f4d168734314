"""Whole networks: the containers that hold layers and run them, and named architectures.

- ``graph.py``: the engine: nodes in one run order, forward, and backward with the gradients of a value
  read twice summed; shared layers run through replicas;
- ``model.py``: ``Model(inputs, outputs)``, layers joined into a graph, with forward, backward and the
  ``fit``, ``evaluate``, ``predict`` methods (which hand the model to ``glassnet.training``);
- ``sequential.py``: ``Sequential``, the chain case of ``Model``;
- ``summary.py``: a model's layer table, as text and as HTML;
- ``presets.py``: named architectures (``lenet``, ``mlp``, ``simple``, ``colour``, ...) built for a data set.

Imports: foundations, nn, training.
"""
from . import presets
from .model import Model
from .sequential import Sequential
