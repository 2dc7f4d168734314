"""Timing of single layers against PyTorch: the depthwise and grouped convolutions of MobileNet and
ShuffleNet, and one MobileNetV2 inverted residual block, forward alone and forward + backward (batch 64)."""
import numpy as np

from ...files.torch_convert import to_torch
from ...models.model import Model
from ...nn.layers import Conv2D
from ...nn.symbolic import Input
from ...models.presets import inverted_residual
from . import measure

BATCH = 64


def layer_cases():
    """name -> (description, input shape (C, H, W), a function building the glassnet model)."""
    rng = np.random.default_rng(0)

    def single(layer, shape):
        x = Input(shape)
        return Model(x, layer(x))

    def block():
        x = Input((24, 14, 14))
        return Model(x, inverted_residual(x, 24, 1, 4, rng))
    return {
        "depthwise 3x3": ("96 channels, groups 96, 14x14", (96, 14, 14),
                          lambda: single(Conv2D(96, 96, 3, padding=1, groups=96, bias=False, rng=rng), (96, 14, 14))),
        "depthwise 3x3 stride 2": ("96 channels, groups 96, 28x28 -> 14x14", (96, 28, 28),
                                   lambda: single(Conv2D(96, 96, 3, stride=2, padding=1, groups=96, bias=False,
                                                         rng=rng), (96, 28, 28))),
        "grouped 3x3": ("96 -> 96 channels, groups 4, 14x14", (96, 14, 14),
                        lambda: single(Conv2D(96, 96, 3, padding=1, groups=4, bias=False, rng=rng), (96, 14, 14))),
        "inverted residual": ("MobileNetV2 block: 24 -> 96 (1x1), depthwise 3x3, 96 -> 24 (1x1), BatchNorm, "
                              "ReLU6, shortcut; 14x14", (24, 14, 14), block),
    }


def layer_timings(dtype, torch, repeats, seconds):
    """name -> {"description", "forward": figures, "train": figures} in images/s (figures as side_by_side)."""
    results = {}
    for name, (description, shape, build) in layer_cases().items():
        model = build().astype(dtype)
        x = np.random.default_rng(1).standard_normal((BATCH,) + shape).astype(dtype)
        dy = np.random.default_rng(2).standard_normal(model.forward(x).shape).astype(dtype)

        def glass_train():
            model.forward(x)
            model.backward(dy)
        forward = {"glassnet": lambda: model.forward(x)}
        train = {"glassnet": glass_train}
        if torch is not None:
            twin = to_torch(model)
            tx = torch.from_numpy(x).requires_grad_(True)
            tdy = torch.from_numpy(dy)

            def torch_forward():
                with torch.no_grad():
                    twin(tx)

            def torch_train():
                tx.grad = None
                twin.zero_grad(set_to_none=True)
                twin(tx).backward(tdy)
            forward["pytorch"], train["pytorch"] = torch_forward, torch_train
        results[name] = {"description": description,
                         "forward": measure.side_by_side(forward, BATCH, repeats, seconds),
                         "train": measure.side_by_side(train, BATCH, repeats, seconds)}
    return results


def layers_markdown(results):
    lines = ["", f"Layers of real architectures, batch {BATCH} (img/s; train = forward + backward):", "",
             "| layer | shape | glassnet forward | PyTorch forward | ratio | glassnet train | PyTorch train | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for name, result in results.items():
        cells = [name, result["description"]]
        for kind in ("forward", "train"):
            glass = result[kind]["glassnet"]["median"]
            other = result[kind].get("pytorch", {}).get("median")
            cells += [f"{glass:,.0f}", "n/a" if other is None else f"{other:,.0f}",
                      "n/a" if other is None else f"{glass / other:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
