"""Transposed 2-D convolution: the adjoint of Conv2D (its forward is Conv2D's input gradient)."""
import numpy as np

from .. import init
from ...backend import contiguous, namespace, same_place
from ...errors import GlassnetError
from ...validation import as_float_array, as_gradient, check_batch, int_pair, make_rng, positive_int
from .base import Layer
from .conv import channel_groups, grouped_matmul, grouped_transpose
from .windows import col2im, crop_padding, im2col, pad_images, span


class ConvTranspose2D(Layer):
    """Transposed convolution ("deconvolution"), as PyTorch's ``nn.ConvTranspose2d``.

    Forward is what Conv2D's backward does to a gradient: every input pixel spreads its value,
    times the kernel, over a window of the output, windows ``stride`` apart, overlapping sums
    added::

        y_full[n, g*Fg + f, i*sh + u*dh, j*sw + v*dw] += weight[g*Cg + c, f, u, v] * x[n, g*Cg + c, i, j]
        y = y_full[:, :, ph : ph + OH, pw : pw + OW] + bias

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (kh, kw)
    stride : int or (sh, sw), default 1
    padding : int or (ph, pw), default 0
        Rows/columns cut from each side of the full output (the padding of the Conv2D it inverts).
    output_padding : int or (oh, ow), default 0
        Extra rows/columns at the bottom/right; each smaller than the stride or the dilation.
    groups : int, default 1
    bias : bool, default True
    dilation : int or (dh, dw), default 1
    weight_init, rng, dtype : as Conv2D (PyTorch's initialisation by default)

    Shapes
    ------
    Input (N, in_channels, H, W); output (N, out_channels, OH, OW) with
    ``OH = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oh + 1`` and likewise OW.
    weight (in_channels, out_channels / groups, kh, kw) (as PyTorch); bias (out_channels,).

    Examples
    --------
    >>> up = ConvTranspose2D(8, 4, kernel_size=3, stride=2, padding=1, output_padding=1, rng=0)
    >>> up(np.zeros((2, 8, 7, 7))).shape
    (2, 4, 14, 14)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, weight_init="torch", rng=None, dtype=np.float64):
        super().__init__(dtype)
        name = "ConvTranspose2D"
        self.in_channels = positive_int(in_channels, "in_channels", name)
        self.out_channels = positive_int(out_channels, "out_channels", name)
        self.kernel_size = int_pair(kernel_size, "kernel_size", name)
        self.stride = int_pair(stride, "stride", name)
        self.padding = int_pair(padding, "padding", name, minimum=0)
        self.output_padding = int_pair(output_padding, "output_padding", name, minimum=0)
        self.dilation = int_pair(dilation, "dilation", name)
        self.groups = channel_groups(self.in_channels, self.out_channels, groups, name)
        for extra, s, d in zip(self.output_padding, self.stride, self.dilation):
            if extra >= max(s, d):
                raise GlassnetError(f"{name}: output_padding must be smaller than the stride or the dilation "
                                    f"(as in PyTorch). Received: output_padding={output_padding!r} with "
                                    f"stride={stride!r}, dilation={dilation!r}")
        self.use_bias = bool(bias)
        self.weight_init = weight_init
        kh, kw = self.kernel_size
        shape = (self.in_channels, self.out_channels // self.groups, kh, kw)
        # PyTorch's fan-in of a transposed conv is computed on its weight as stored: dim 1 times the kernel
        fan_in, fan_out = shape[1] * kh * kw, self.in_channels // self.groups * kh * kw
        generator = make_rng(rng, name)
        self.params["weight"] = init.initial_weight(weight_init, shape, fan_in, fan_out, generator, self.dtype, name)
        if self.use_bias:
            self.params["bias"] = init.initial_bias(weight_init, (self.out_channels,), fan_in, generator, self.dtype)
        self._cache = None

    def get_config(self):
        config = {"in_channels": self.in_channels, "out_channels": self.out_channels,
                  "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                  "padding": list(self.padding), "output_padding": list(self.output_padding)}
        if self.dilation != (1, 1):
            config["dilation"] = list(self.dilation)
        if self.groups != 1:
            config["groups"] = self.groups
        config["bias"] = self.use_bias
        return config

    @property
    def pads(self):
        """(top, bottom, left, right) cut from the full output (output_padding's rows are part of it)."""
        ph, pw = self.padding
        return (ph, ph, pw, pw)

    def check_input_shape(self, input_shape):
        self._expect_sample(input_shape, f"({self.in_channels}, H, W)", 3, self.in_channels)

    def output_shape(self, input_shape):
        _, H, W = input_shape
        return (self.out_channels,) + self._spatial_output(H, W)

    def _full_size(self, H, W):
        """The output before the padding is cut: (H - 1) * s + dilated kernel span + output_padding."""
        return tuple((size - 1) * s + span(k, d) + extra for size, s, k, d, extra in
                     zip((H, W), self.stride, self.kernel_size, self.dilation, self.output_padding))

    def _spatial_output(self, H, W):
        full = self._full_size(H, W)
        out = tuple(f - 2 * p for f, p in zip(full, self.padding))
        if min(out) < 1:
            raise GlassnetError(f"ConvTranspose2D: padding={self.padding} leaves no output for an input of "
                                f"H, W = ({H}, {W}) (the full output is {full})")
        return out

    def forward(self, x):
        """x: (N, C_in, H, W) -> (N, C_out, OH, OW)."""
        x = as_float_array(x, "ConvTranspose2D", self.dtype)
        check_batch(x, "ConvTranspose2D", f"(N, {self.in_channels}, H, W)", channels_axis=1,
                    channels=self.in_channels)
        N, C, H, W = x.shape
        self._spatial_output(H, W)
        xp = namespace(x)
        weight = self.params["weight"]
        same_place(x, weight, "input", "ConvTranspose2D")
        x_rows = xp.reshape(xp.permute_dims(x, (1, 0, 2, 3)), (C, N * H * W))          # (C_in, N*H*W)
        weight_rows = xp.reshape(weight, (C, -1))                                       # (C_in, F_g*kh*kw)
        # Conv2D's backward with this layer's weight: columns = W_g^T @ x_g, each added onto its window
        cols = grouped_matmul(grouped_transpose(weight_rows, self.groups), x_rows, self.groups)
        full = col2im(cols, (N, self.out_channels) + self._full_size(H, W), self.kernel_size, self.stride,
                      (H, W), self.dilation)
        out = crop_padding(full, self.pads)
        if self.use_bias:
            out = out + xp.reshape(self.params["bias"], (1, self.out_channels, 1, 1))
        self._cache = (x_rows, (N, H, W))
        return contiguous(xp, out)

    def backward(self, dy):
        """dy: (N, C_out, OH, OW) -> dL/dx: (N, C_in, H, W); fills grads["weight"], grads["bias"]."""
        cols, (N, H, W) = self._parameter_grads(dy)
        xp = namespace(cols)
        # columns = W^T @ x  =>  dx_g = W_g @ dcols_g (a plain Conv2D of dy with this weight)
        weight_rows = xp.reshape(self.params["weight"], (self.in_channels, -1))
        dx_rows = grouped_matmul(weight_rows, cols, self.groups)                        # (C_in, N*H*W)
        return contiguous(xp, xp.permute_dims(xp.reshape(dx_rows, (self.in_channels, N, H, W)), (1, 0, 2, 3)))

    def backward_parameters(self, dy):
        self._parameter_grads(dy)

    def _parameter_grads(self, dy):
        """Fill grads from dy; returns dy's columns (C_out*kh*kw, N*H*W) and (N, H, W)."""
        self._require_cache(self._cache)
        x_rows, (N, H, W) = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, (N, self.out_channels) + self._spatial_output(H, W))
        xp = namespace(dy)
        # the cut padding gets zero gradient; the columns of dy padded back are dL/d(columns)
        dy_full = pad_images(dy, self.pads)
        cols = im2col(dy_full, self.kernel_size, self.stride, (H, W), self.dilation)   # (C_out*kh*kw, N*H*W)
        # columns_g = W_g^T @ x_g  =>  dW_g = x_g @ dcols_g^T
        G, C = self.groups, self.in_channels
        weight_grad = (xp.reshape(x_rows, (G, C // G, -1))
                       @ xp.matrix_transpose(xp.reshape(cols, (G, cols.shape[0] // G, -1))))
        self.grads["weight"] = xp.reshape(weight_grad, self.params["weight"].shape)
        if self.use_bias:
            self.grads["bias"] = xp.sum(dy, axis=(0, 2, 3))
        return cols, (N, H, W)
