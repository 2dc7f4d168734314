"""1x1 convolution (groups 1, no padding, no dilation) as one matrix product per sample, without columns.

A 1x1 convolution reads one pixel per window, so its im2col columns are the input itself with the
channels first: ``cols = x`` transposed to (C, N*H*W), a copy, and the output of ``W @ cols`` comes out as
(F, N, H, W), another copy back to (N, F, H, W). Per sample the product needs neither: ``W (F, C) @ x[n]
(C, H*W)`` is sample n's output (F, H*W) in place, and a matmul broadcast over the batch does every sample
in one call. A stride s reads every s-th row and column: that view is copied once (1/s^2 of the input).
ResNet-50's and MobileNetV2's 1x1 convolutions are most of their convolutions (A/B in issue 28's note).
"""
from ...backend import add_into, device_of, namespace


def strided_input(x, stride):
    """The pixels a 1x1 kernel with ``stride`` reads: (N, C, H, W) -> (N, C, OH, OW) (x itself for stride 1)."""
    (sh, sw) = stride
    if (sh, sw) == (1, 1):
        return x
    return namespace(x).asarray(x[:, :, ::sh, ::sw], copy=True)


def pointwise_forward(x, weight):
    """x (N, C, H, W) (already strided), weight (F, C, 1, 1) -> (N, F, H, W): y[n] = W @ x[n] per sample."""
    xp = namespace(x)
    N, C, H, W = x.shape
    F = weight.shape[0]
    out = xp.matmul(xp.reshape(weight, (F, C)), xp.reshape(x, (N, C, H * W)))      # (N, F, H*W)
    return xp.reshape(out, (N, F, H, W))


def pointwise_weight_grad(x, dy):
    """dL/dweight (F, C, 1, 1) from x (N, C, H, W) (strided) and dy (N, F, H, W).

    y[n] = W @ x[n]  =>  dW = sum over n of dy[n] @ x[n]^T: one product per sample, summed (the order
    of the sum over samples and pixels differs from one long product; the numbers agree to rounding).
    """
    xp = namespace(dy)
    N, C, H, W = x.shape
    F = dy.shape[1]
    per_sample = xp.matmul(xp.reshape(dy, (N, F, H * W)), xp.matrix_transpose(xp.reshape(x, (N, C, H * W))))
    return xp.reshape(xp.sum(per_sample, axis=0), (F, C, 1, 1))


def pointwise_input_grad(dy, weight, input_shape, stride):
    """dL/dx (N, C, H, W) (the layer's input shape before the stride) from dy (N, F, OH, OW).

    y[n] = W @ x[n]  =>  dx[n] = W^T @ dy[n]; with a stride, the pixels the kernel skipped get 0.
    """
    xp = namespace(dy)
    N, F, OH, OW = dy.shape
    C = weight.shape[1]
    dx = xp.matmul(xp.matrix_transpose(xp.reshape(weight, (F, C))), xp.reshape(dy, (N, F, OH * OW)))
    dx = xp.reshape(dx, (N, C, OH, OW))
    (sh, sw) = stride
    if (sh, sw) == (1, 1):
        return dx
    full = xp.zeros(tuple(input_shape), dtype=dy.dtype, device=device_of(dy))
    add_into(full, (slice(None), slice(None), slice(None, None, sh), slice(None, None, sw)), dx)
    return full
