"""Models in and out: ONNX (``onnx_format.py``), PyTorch (``torch_convert.py``) and a layer-by-layer
comparison (``compare.py``). Each converter is a table from the other format's op to a glassnet
layer plus the layout change; the other library is imported only when a converter is called."""
