"""A large convolution's forward and backward passes in blocks of samples and output rows (NumPy).

im2col's columns hold kh*kw copies of every input pixel: for VGG-16's second layer at 224x224 and batch 8,
(64 * 9) x (8 * 224 * 224) float32 values, 925 MB, and the output of their product comes out as (F, N, OH,
OW), to be copied again into (N, F, OH, OW). Memory first touched costs more than the arithmetic here: a
fresh 925 MB array took 1.1-2.4 s to fill on this project's virtual machines, its product with the weights
0.37 s. So when the columns would pass ``budget`` bytes, they are made for a block of samples (or, when one
sample's are already too many, a band of output rows of one sample) at a time, each block's product is
written straight into its place in the (N, F, OH, OW) output, and the next block reuses the freed memory
(``training/heap.py`` keeps it). Every output value is the same dot product as in one GEMM. Backward
makes each block's columns again from the kept padded input: the weight gradient is summed over the
blocks, and each block's column gradients are added back onto the input rows the block read (bands of
rows overlap by the kernel's span less the stride: their sums add up there).
"""
import numpy as np

from .windows import col2im, im2col, span


def block_plan(samples, out_rows, row_bytes, budget):
    """(samples per block, output rows per block) whose columns stay within ``budget`` bytes (at least one
    row of one sample); ``row_bytes`` is the columns' size for one output row of one sample.

    >>> block_plan(8, 224, 64 * 9 * 224 * 4, 16 << 20), block_plan(64, 14, 16 * 9 * 14 * 4, 16 << 20)
    ((1, 32), (64, 14))
    """
    rows = max(1, min(out_rows, budget // row_bytes))
    if rows < out_rows:
        return 1, rows
    return max(1, min(samples, budget // (row_bytes * out_rows))), out_rows


def blocked_forward(x_padded, weight_rows, multiply, kernel, stride, dilation, out_hw, budget):
    """x_padded (N, C, Hp, Wp), weight_rows (F, C/groups*kh*kw) -> (N, F, OH, OW), without the bias.

    ``multiply(weight_rows, cols)`` is the (grouped) product of the weights with a block's columns; None
    for a plain product (groups = 1), which each sample of a block then writes straight into its place in
    the output (``matmul(..., out=)`` into a view whose rows are the output's channels): no product to
    copy over.
    """
    N, C = x_padded.shape[:2]
    (kh, kw), sh, dh = kernel, stride[0], dilation[0]
    OH, OW = out_hw
    F = weight_rows.shape[0]
    plan = block_plan(N, OH, C * kh * kw * OW * x_padded.dtype.itemsize, budget)
    out = np.empty((N, F, OH, OW), dtype=x_padded.dtype)
    by_sample = np.reshape(out, (N, F, OH * OW))                                  # a view of out
    for first, last, top, bottom in _blocks(N, OH, plan):
        # output rows top..bottom-1 read input rows top*sh .. (bottom-1)*sh + span - 1
        band = x_padded[first:last, :, top * sh:(bottom - 1) * sh + span(kh, dh), :]
        cols = im2col(band, kernel, stride, (bottom - top, OW), dilation)         # (C*kh*kw, n*rows*OW)
        if multiply is None:
            width = (bottom - top) * OW
            for n in range(last - first):
                np.matmul(weight_rows, cols[:, n * width:(n + 1) * width],
                          out=by_sample[first + n, :, top * OW:bottom * OW])        # (F, rows*OW) in place
            continue
        product = multiply(weight_rows, cols)                                      # (F, n*rows*OW)
        out[first:last, :, top:bottom, :] = np.reshape(product, (F, last - first, bottom - top, OW)).transpose(
            1, 0, 2, 3)
    return out


def _blocks(N, OH, plan):
    """(first sample, last sample + 1, top output row, bottom output row + 1) of each block, in order."""
    samples, rows = plan
    for first in range(0, N, samples):
        for top in range(0, OH, rows):
            yield first, min(N, first + samples), top, min(OH, top + rows)


def blocked_backward(x_padded, dy, weight_rows, weight_grad, input_columns_grad, kernel, stride, dilation,
                     budget, input_grad=True):
    """(dL/dweight_rows (F, C/groups*kh*kw), dL/dx_padded (N, C, Hp, Wp) or None) from dy (N, F, OH, OW).

    ``weight_grad(dy_rows, cols, samples)`` and ``input_columns_grad(weight_rows, dy_rows)`` are the
    layer's products for one block (dy_rows (F, P), cols (C*kh*kw, P)).
    """
    N, C = x_padded.shape[:2]
    (kh, kw), sh, dh = kernel, stride[0], dilation[0]
    F, OH, OW = dy.shape[1:]
    plan = block_plan(N, OH, C * kh * kw * OW * x_padded.dtype.itemsize, budget)
    total = None
    dx_padded = np.zeros(x_padded.shape, dtype=dy.dtype) if input_grad else None
    for first, last, top, bottom in _blocks(N, OH, plan):
        reach = slice(top * sh, (bottom - 1) * sh + span(kh, dh))                 # the input rows read
        band = x_padded[first:last, :, reach, :]
        cols = im2col(band, kernel, stride, (bottom - top, OW), dilation)         # (C*kh*kw, n*rows*OW)
        dy_rows = np.reshape(dy[first:last, :, top:bottom, :].transpose(1, 0, 2, 3), (F, -1))   # copy
        # y = W @ cols  =>  dW = sum over blocks of dy_rows @ cols^T
        part = weight_grad(dy_rows, cols, last - first)
        total = part if total is None else total + part
        if input_grad:
            # dcols = W^T @ dy_rows, each entry back onto the pixel it was read from
            dcols = input_columns_grad(weight_rows, dy_rows)
            dx_padded[first:last, :, reach, :] += col2im(dcols, band.shape, kernel, stride, (bottom - top, OW),
                                                         dilation)
    return total, dx_padded
