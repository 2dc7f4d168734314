"""How a network learns: the fit loop and everything that listens to it or keeps it going.

- ``loop.py``: ``fit``, ``evaluate`` and ``predict``, which know a model only through a small
  interface (``layers``, ``forward``, ``backward``, ``named_parameters``, ``place``, ``train``/``eval``,
  ``metadata``, ``get_config``/``state_arrays``/``load_state_arrays``), never through the model classes;
- ``callbacks.py``: the batch-end and epoch-end events and their listeners;
- ``history.py``: what ``fit`` returns, drawing its own curves in a notebook;
- ``checkpoint.py``: writing checkpoints, and reading one back into the model ``fit`` already has;
- ``replicas.py``: a large batch split over both cores; ``heap.py``: the malloc pad that keeps
  freed memory for the next step;
- ``distributed.py``: data-parallel training over MPI.

Imports: foundations (errors, backend, validation, archive), nn, data.
"""
from .callbacks import BatchEnd, Callback, EpochEnd, StopTraining
from .history import History
from .clipping import clip_grad_norm, clip_grad_value, gradient_norm
from .early_stopping import EarlyStopping
from . import schedules
