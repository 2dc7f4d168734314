"""How a person looks inside: every number of a pass, checks, comparisons and pictures.

- ``trace.py``: ``gn.trace``, every array of one forward, backward and update step;
- ``display.py``: a trace as HTML in a notebook;
- ``explain.py``: the same as text (``glassnet explain``), and seed 000's worked example;
- ``gradcheck.py``: finite-difference checks of every gradient;
- ``compare.py``: a model against PyTorch, Keras or another glassnet model, layer by layer;
- ``plots.py``: filters, feature maps, curves, confusion matrices and mistakes as PNG files.
- ``attribution.py``: why an output came out: gradients, integrated gradients, SmoothGrad, occlusion,
  Grad-CAM (``gn.attribute``).

Imports: foundations, nn, data, training, models, files.
"""
from . import explain, plots
from .attribution import attribute
from .filter_visualization import top_inputs, visualize_filter
from .compare import compare
from .gradcheck import gradcheck
from .trace import Trace, trace
