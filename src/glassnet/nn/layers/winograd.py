"""3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3) (NumPy).

A 3x3 convolution makes each 2x2 block of outputs from a 4x4 tile of the (padded) input: 36 multiplies
per input channel and output channel as a direct product (im2col's GEMM). Winograd's F(2x2, 3x3) makes
the same 2x2 block with 16, an elementwise product of transformed tiles, so the matrix products shrink
by 36/16 = 2.25x. With ``d`` a 4x4 input tile and ``g`` a 3x3 kernel,

    Y (2x2) = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise)

    B^T = [1  0 -1  0]     G = [ 1    0    0 ]     A^T = [1  1  1  0]
          [0  1  1  0]         [1/2  1/2  1/2]           [0  1 -1 -1]
          [0 -1  1  0]         [1/2 -1/2  1/2]
          [0  1  0 -1]         [ 0    0    1 ]

Read along one axis: a 1-D correlation of 4 inputs with 3 taps gives 2 outputs ``y0 = d0 g0 + d1 g1 +
d2 g2`` and ``y1 = d1 g0 + d2 g1 + d3 g2``; with ``m0 = (d0 - d2) g0``, ``m1 = (d1 + d2)(g0 + g1 + g2)/2``,
``m2 = (d2 - d1)(g0 - g1 + g2)/2`` and ``m3 = (d1 - d3) g2``, ``y0 = m0 + m1 + m2`` and ``y1 = m1 - m2 -
m3`` (expand and the halves cancel): 4 multiplies for 6. Applied along rows and then columns, 16 for 36.
Summed over input channels, each of the 16 tile positions (u, v) is one matrix product:
``M[uv] (K, tiles) = U[uv] (K, C) @ V[uv] (C, tiles)`` with ``U = G g G^T`` (once per weight) and ``V =
B^T d B`` (additions only); ``A^T M A`` turns each tile's 16 sums into its 2x2 outputs.

The same numbers in another order of operations: float64 results agree with the direct sum to about
1e-15 relative (the tests check PyTorch at 1e-10), float32 results to float32's rounding. The
transforms are elementwise passes over memory (V holds 4 values per input pixel, M 4 per output
pixel), so they pay only where the products are large: many channels on both sides
(``Conv2D.winograd``'s rule, from A/B timings in issue 28's note).

The transforms read strided pixels (tile rows and columns advance by 2). So that the inner loops run
over contiguous memory, the padded input is first split into its four *phases*, rows and columns
even/odd (``x_pad[2i + p, 2j + q]`` is phase (p, q) at (i, j)): tile (i, j)'s pixel (a, b) is phase (a
mod 2, b mod 2) at (i + a // 2, j + b // 2), a shifted contiguous slice. Large inputs run in blocks of
samples or tile rows (as ``conv_blocks.py``), each block's V and M within ``budget`` bytes.
"""
import numpy as np

from .conv_blocks import block_plan

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def winograd_weights(weight):
    """U = G g G^T of every (output, input) channel pair's kernel: (K, C, 3, 3) -> (16, K, C), row u*4 + v.

    U[uv] = sum over taps (a, b) of G[u, a] G[v, b] g[a, b]: the Kronecker product of G with itself (16, 9)
    times the kernels as (9, K*C), one thin product that lands in (16, K, C) order.
    """
    K, C = weight.shape[:2]
    both = np.kron(G, G).astype(weight.dtype)                         # (16, 9): row u*4+v, column a*3+b
    return np.reshape(both @ np.reshape(weight, (K * C, 9)).T, (16, K, C))


def flipped_weights(weight):
    """The kernel of a 3x3 convolution's input gradient: (K, C, 3, 3) -> (C, K, 3, 3), each kernel turned
    180 degrees. dx_pad = (dy padded by 2) correlated with it (see ``Conv2D.backward``)."""
    return np.transpose(weight[:, :, ::-1, ::-1], (1, 0, 2, 3))


def winograd_forward(x_padded, U, out_hw, budget):
    """x_padded (N, C, Hp, Wp) correlated with the kernels whose transforms are U (16, K, C), stride 1:
    -> (N, K, OH, OW) with OH = Hp - 2, OW = Wp - 2 (no bias)."""
    N, C = x_padded.shape[:2]
    K = U.shape[1]
    OH, OW = out_hw
    th, tw = (OH + 1) // 2, (OW + 1) // 2                             # tiles down and across
    itemsize = x_padded.dtype.itemsize
    out = np.empty((N, K, th, 2, tw, 2), dtype=x_padded.dtype)        # (N, K, 2*th, 2*tw) as 2x2 blocks
    samples, rows = block_plan(N, th, 16 * (C + K) * tw * itemsize, budget)
    for first in range(0, N, samples):
        last = min(N, first + samples)
        for top in range(0, th, rows):
            bottom = min(th, top + rows)
            # tile rows top..bottom-1 read padded rows 2*top .. 2*bottom + 1
            V = input_transform(phases(x_padded[first:last, :, 2 * top:2 * bottom + 2], bottom - top, tw))
            M = np.matmul(U, np.reshape(V, (16, C, -1)))               # (16, K, n*rows*tw): 16 GEMMs
            output_transform(np.reshape(M, (16, K, last - first, bottom - top, tw)),
                             np.transpose(out[first:last, :, top:bottom], (1, 0, 2, 3, 4, 5)))
    out = np.reshape(out, (N, K, 2 * th, 2 * tw))
    if (2 * th, 2 * tw) == (OH, OW):
        return out
    return np.ascontiguousarray(out[:, :, :OH, :OW])                  # an odd size: the last row/column dropped


def phases(x_band, th, tw):
    """x_band (n, C, rows, Wp) -> [[P00, P01], [P10, P11]], Ppq (C, n, th + 1, tw + 1) = x_band[:, :, p::2,
    q::2] channels first, zeros past the band's edge (an odd output size reads one row/column beyond)."""
    n, C = x_band.shape[:2]
    by_channel = np.transpose(x_band, (1, 0, 2, 3))
    split = [[None, None], [None, None]]
    for p in range(2):
        for q in range(2):
            view = by_channel[:, :, p::2, q::2][:, :, :th + 1, :tw + 1]
            if view.shape[2:] == (th + 1, tw + 1):
                split[p][q] = np.ascontiguousarray(view)
            else:
                split[p][q] = np.zeros((C, n, th + 1, tw + 1), dtype=x_band.dtype)
                split[p][q][:, :, :view.shape[2], :view.shape[3]] = view
    return split


def input_transform(split):
    """V = B^T d B of every tile from the phases: -> (16, C, n, th, tw), row u*4 + v."""
    C, n, th1, tw1 = split[0][0].shape
    th, tw = th1 - 1, tw1 - 1
    V = np.empty((16, C, n, th, tw), dtype=split[0][0].dtype)
    row_sums = []
    for q in range(2):
        # tile rows 0..3 at column phase q: d0 = P0q[i], d1 = P1q[i], d2 = P0q[i+1], d3 = P1q[i+1]
        d0, d1, d2, d3 = split[0][q][:, :, :th], split[1][q][:, :, :th], split[0][q][:, :, 1:], split[1][q][:, :, 1:]
        row_sums.append((d0 - d2, d1 + d2, d2 - d1, d1 - d3))        # B^T d: rows of B^T
    for u in range(4):
        even, odd = row_sums[0][u], row_sums[1][u]
        # tile columns 0..3: e0 = even[j], e1 = odd[j], e2 = even[j+1], e3 = odd[j+1]; (B^T d) B: columns of B
        e0, e1, e2, e3 = even[..., :tw], odd[..., :tw], even[..., 1:], odd[..., 1:]
        np.subtract(e0, e2, out=V[4 * u])
        np.add(e1, e2, out=V[4 * u + 1])
        np.subtract(e2, e1, out=V[4 * u + 2])
        np.subtract(e1, e3, out=V[4 * u + 3])
    return V


def output_transform(M, out):
    """Y = A^T m A of every tile: M (16, K, n, th, tw) -> written into out (K, n, th, 2, tw, 2)."""
    top = M[0:4] + M[4:8]                                             # A^T m, row 0: m0 + m1 + m2
    top += M[8:12]
    low = M[4:8] - M[8:12]                                            # row 1: m1 - m2 - m3
    low -= M[12:16]
    for a, row in enumerate((top, low)):
        np.add(row[0], row[1], out=out[:, :, :, a, :, 0])             # (A^T m) A, column 0
        out[:, :, :, a, :, 0] += row[2]
        np.subtract(row[1], row[2], out=out[:, :, :, a, :, 1])        # column 1
        out[:, :, :, a, :, 1] -= row[3]
