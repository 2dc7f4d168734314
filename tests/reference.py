"""Shared test helpers: PyTorch float64 references and plain-loop versions of the fast code."""
import numpy as np
import torch

torch.set_default_dtype(torch.float64)

# float64 parity: relative 1e-10, with an absolute floor far below any meaningful value
RTOL = 1e-10


def assert_matches(ours, reference, rtol=RTOL):
    """``ours`` equals ``reference`` to relative ``rtol`` (atol scaled to the array's magnitude)."""
    reference = reference.detach().numpy() if isinstance(reference, torch.Tensor) else np.asarray(reference)
    ours = np.asarray(ours)
    assert ours.shape == reference.shape, f"shape {ours.shape} != reference {reference.shape}"
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    np.testing.assert_allclose(ours, reference, rtol=rtol, atol=rtol * 1e-3 * (1.0 + scale))


def tensor(array, grad=False):
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=grad)


def torch_forward_backward(fn, x, dy, params=()):
    """Run ``fn(x_t, *params_t)`` in torch float64, back-propagate ``dy``.

    Returns (output, dL/dx, [dL/dparam ...]) as NumPy arrays.
    """
    x_t = tensor(x, grad=True)
    params_t = [tensor(p, grad=True) for p in params]
    out = fn(x_t, *params_t)
    out.backward(tensor(dy))
    return out.detach().numpy(), x_t.grad.numpy(), [p.grad.numpy() for p in params_t]


def loop_conv2d(x, weight, bias, stride, pads):
    """Plain-loop convolution: x (N, C, H, W), weight (F, C, kh, kw) -> (N, F, OH, OW)."""
    sh, sw = stride
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    N, C, Hp, Wp = xp.shape
    F, _, kh, kw = weight.shape
    OH, OW = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    out = np.zeros((N, F, OH, OW))
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    region = xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[n, f, i, j] = np.sum(region * weight[f]) + (bias[f] if bias is not None else 0.0)
    return out


def loop_maxpool2d_backward(x, dy, kernel, stride, padding):
    """Plain-loop max-pool gradient: each window sends dy to its first (row-major) maximum."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    dxp = np.zeros_like(xp)
    N, C, OH, OW = dy.shape
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    region = xp[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    u, v = np.unravel_index(np.argmax(region), region.shape)
                    dxp[n, c, i * sh + u, j * sw + v] += dy[n, c, i, j]
    return dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
