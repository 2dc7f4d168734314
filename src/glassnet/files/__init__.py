"""What glassnet writes and exchanges: model files, checkpoints read as models, and converters.

- ``serialization.py``: ``save``/``load`` of model files, and ``load_checkpoint``, which builds the
  model a checkpoint holds (writing checkpoints is ``glassnet.training``'s);
- ``onnx_format.py``, ``torch_convert.py``, ``keras_convert.py``: tables from ONNX ops, PyTorch
  modules and Keras layers to glassnet layers, both ways.

The crash-safe writes (``glassnet.atomic``) and the checked archive (``glassnet.archive``) are
foundations, because data sets and training write files too.

Imports: foundations, nn, training, models.
"""
from .keras_convert import from_keras, to_keras
from .onnx_format import export_onnx, import_onnx
from .serialization import load, load_checkpoint, save
from .torch_convert import from_torch, to_torch
