"""Where a depthwise and a grouped convolution's training step spends its time (ms, float32, batch 64,
96 channels, 14x14, 3x3), beside PyTorch's whole step. Run: python benchmarks/profile_grouped_conv.py"""
import time

import numpy as np
import torch

from glassnet.nn.layers.conv import grouped_matmul, grouped_transpose
from glassnet.nn.layers.depthwise import depthwise_forward, depthwise_input_grad, depthwise_weight_grad
from glassnet.nn.layers.windows import col2im, im2col, pad_images


def ms(step, calls=20):
    step()
    started = time.perf_counter()
    for _ in range(calls):
        step()
    return (time.perf_counter() - started) / calls * 1e3


def main():
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    N, C, H = 64, 96, 14
    x = rng.standard_normal((N, C, H, H)).astype(np.float32)
    dy = rng.standard_normal((N, C, H, H)).astype(np.float32)
    x_padded = pad_images(x, (1, 1, 1, 1))
    print("depthwise 3x3 (groups 96), tap by tap:")
    weight = rng.standard_normal((C, 1, 3, 3)).astype(np.float32)
    parts = {"forward": lambda: depthwise_forward(x_padded, weight, 1, (1, 1), (1, 1), (H, H)),
             "weight gradient": lambda: depthwise_weight_grad(x_padded, dy, 1, (3, 3), (1, 1), (1, 1)),
             "input gradient": lambda: depthwise_input_grad(dy, weight, 1, x_padded.shape, (1, 1), (1, 1))}
    for name, step in parts.items():
        print(f"  {name:28s} {ms(step):7.2f}")
    for groups in (96, 4):
        conv = torch.nn.Conv2d(C, C, 3, padding=1, groups=groups, bias=False)
        tx, tdy = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

        def torch_step():
            tx.grad = None
            conv.zero_grad(set_to_none=True)
            conv(tx).backward(tdy)
        print(f"  PyTorch forward + backward, groups {groups}: {ms(torch_step):7.2f}")
    print("grouped 3x3 (groups 4), through columns:")
    weight = rng.standard_normal((C, C // 4, 3, 3)).astype(np.float32)
    rows = weight.reshape(C, -1)
    cols = im2col(x_padded, (3, 3), (1, 1), (H, H))
    dy_rows = np.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(C, -1)
    dcols = grouped_matmul(grouped_transpose(rows, 4), dy_rows, 4)
    parts = {"im2col": lambda: im2col(x_padded, (3, 3), (1, 1), (H, H)),
             "W @ cols (batched, 4 groups)": lambda: grouped_matmul(rows, cols, 4),
             "dy transposed to rows": lambda: np.ascontiguousarray(dy.transpose(1, 0, 2, 3)),
             "dW = dy @ cols^T": lambda: dy_rows.reshape(4, C // 4, -1) @ np.swapaxes(
                 cols.reshape(4, cols.shape[0] // 4, -1), 1, 2),
             "dcols = W^T @ dy": lambda: grouped_matmul(grouped_transpose(rows, 4), dy_rows, 4),
             "col2im": lambda: col2im(dcols, x_padded.shape, (3, 3), (1, 1), (H, H))}
    for name, step in parts.items():
        print(f"  {name:28s} {ms(step):7.2f}")


if __name__ == "__main__":
    main()
