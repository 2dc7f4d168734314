"""A stack of layers applied in order: the chain case of ``Model`` (the same engine, one node per layer)."""
from ..errors import GlassnetError
from ..nn.layers import Layer
from .graph import Graph
from .model import Model


class Sequential(Model):
    """Layers applied one after the other.

    Parameters
    ----------
    layers : list of Layer
    dtype : None (keep each layer's dtype, float64 by default) or float32 / float64
        to convert every layer.

    Examples
    --------
    >>> model = gn.Sequential([gn.Dense(4, 8, rng=0), gn.ReLU(), gn.Dense(8, 3, rng=1)])
    >>> model(np.ones((2, 4))).shape
    (2, 3)
    """

    def __init__(self, layers, dtype=None):
        layers = list(layers)
        if not layers:
            raise GlassnetError("Sequential: needs at least one layer. Received: layers=[]")
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise GlassnetError(f"Sequential: item {index} is not a glassnet layer. Received: {layer!r}")
            if layer.merges:
                raise GlassnetError(f"Sequential: item {index} ({type(layer).__name__}) merges several inputs; "
                                    f"build a graph with gn.Input and gn.Model instead")
        if len({id(layer) for layer in layers}) != len(layers):
            raise GlassnetError("Sequential: the same layer object appears twice; create a new layer instead")
        self._setup(Graph.chain(layers), None, dtype)

    def get_config(self):
        """The JSON description model files and checkpoints hold: ``{"dtype": "float64", "layers":
        [{"type": "Conv2D", "config": {...}}, ...], "metadata": {...}}`` (a chain needs no graph)."""
        config = super().get_config()
        del config["graph"]
        return config

    def node_inputs(self):
        return [["input" if k == 0 else f"{k - 1}: {type(self.layers[k - 1]).__name__}"]
                for k in range(len(self.layers))]

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def __repr__(self):
        inner = ",\n".join(f"    {layer!r}" for layer in self.layers)
        return f"Sequential([\n{inner}\n])"
