"""Pictures of why: an attribution over its image, and what a layer's channels look for (PNG files through
``plots``' matplotlib figure, written atomically)."""
import numpy as np

from ..errors import GlassnetError
from .filter_visualization import channel_activation, top_inputs, visualize_filter
from .plots import _figure, _save, _show_image


def upsample_map(values, size):
    """A (H', W') map stretched to (H, W) by bilinear interpolation (Grad-CAM's overlay)."""
    H, W = size
    h, w = values.shape
    rows = np.linspace(0, h - 1, H)
    columns = np.linspace(0, w - 1, W)
    r0, c0 = np.floor(rows).astype(int), np.floor(columns).astype(int)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    fr, fc = (rows - r0)[:, None], (columns - c0)[None, :]
    top = values[r0][:, c0] * (1 - fc) + values[r0][:, c1] * fc
    bottom = values[r1][:, c0] * (1 - fc) + values[r1][:, c1] * fc
    return top * (1 - fr) + bottom * fr


def attribution_overlay(image, attribution, path, title=""):
    """The image (C, H, W) beside its attribution map: (C, H, W) summed over channels, or a (H', W') map
    (Grad-CAM) stretched to the image; red > 0, blue < 0, on one symmetric scale; then the map over the
    image."""
    image = np.asarray(image, dtype=np.float64)
    values = np.asarray(attribution, dtype=np.float64)
    if values.ndim == 3:
        values = values.sum(axis=0)
    if values.ndim != 2:
        raise GlassnetError(f"attribution_overlay: expected a (C, H, W) or (H, W) attribution. "
                            f"Received: {values.shape}")
    if values.shape != image.shape[1:]:
        values = upsample_map(values, image.shape[1:])
    limit = float(np.abs(values).max()) or 1.0
    figure = _figure(9, 3.4)
    axes = figure.subplots(1, 3)
    for axis in axes:
        axis.axis("off")
    _show_image(axes[0], image)
    axes[0].set_title("input")
    shown = axes[1].imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[1].set_title("attribution (red > 0, blue < 0)")
    figure.colorbar(shown, ax=axes[1], shrink=0.8)
    _show_image(axes[2], image)
    axes[2].imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.55)
    axes[2].set_title("over the input")
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def visualized_filters(model, layer, path, images=None, channels=8, value_range=None, steps=200, seed=0):
    """For each of the first ``channels`` channels of ``layer``: the input made up to excite it (with the
    mean activation it reaches), and, given ``images``, the one that excites it most (its activation)."""
    out_channels = None
    made, best = [], []
    for channel in range(channels):
        try:
            image = visualize_filter(model, layer, channel, steps=steps, seed=seed, value_range=value_range)
        except GlassnetError as error:
            if "channel must be in" in str(error) and channel > 0:
                out_channels = channel
                break
            raise
        made.append((image, channel_activation(model, layer, channel, image[None])[0]))
        if images is not None:
            (index,), (activation,) = top_inputs(model, layer, channel, images, count=1)
            best.append((np.asarray(images[index]), activation, int(index)))
    count = out_channels or channels
    rows = 2 if best else 1
    figure = _figure(1.6 * count + 0.6, 1.9 * rows + 0.6)
    axes = np.atleast_2d(figure.subplots(rows, count))
    for axis in axes.ravel():
        axis.axis("off")
    for column, (image, activation) in enumerate(made):
        _show_image(axes[0, column], image)
        dead = activation == 0 and (not best or best[column][1] == 0)        # ReLU never opens: no gradient
        axes[0, column].set_title(f"ch {column}: made up\n" + ("never active (dead)" if dead else
                                                                f"mean {activation:.3g}"), fontsize=8)
    for column, (image, activation, index) in enumerate(best):
        _show_image(axes[1, column], image)
        axes[1, column].set_title(f"best image #{index}\nmean {activation:.3g}", fontsize=8)
    figure.suptitle(f"what layer {layer}'s channels look for")
    return _save(figure, path)
