"""How fast glassnet could infer a large net if everything but its arithmetic cost nothing, beside ONNX Runtime.

    python benchmarks/large_floor.py                         # vgg16, resnet50, mobilenet_v2 at batch 8, 224x224
    python benchmarks/large_floor.py --batch 1 mobilenet_v2

For each layer of the built-in net (evaluation, float32, 2 threads), this times only the arithmetic
glassnet's method has to do, on random operands of the layer's shapes made before the clock starts, the
results written into arrays also made before (memory first touched is slow on some machines, and is not
arithmetic):
- a convolution through columns: its GEMM, (F, C*kh*kw) @ (C*kh*kw, N*OH*OW);
- a 1x1 convolution: its product per sample, (F, C) @ (C, OH*OW) broadcast over the batch;
- a 3x3 stride-1 convolution that Winograd runs (``winograd_pays``): its 16 products (K, C) @ (C, tiles);
- a depthwise convolution: no product; a multiply and an add per tap and output value (NumPy has no
  fused multiply-add), at the rate NumPy reaches on a block of 32K values in cache: no input read at all;
- a Dense layer: x @ W.
Everything else (im2col, padding, Winograd's transforms, BatchNorm, activations, pooling, adds) counts as
free. The sum, the *floor*, is the inference time glassnet's method cannot go under on this machine with
NumPy and this BLAS; ONNX Runtime's and glassnet's whole inference are timed in the same run (interleaved,
median of the repeats, ``measure.side_by_side`` with its pause), and the last columns compare the floor
with issue 28's target (1.5x ONNX Runtime's time).
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from glassnet.apps.benchmark import large, measure  # noqa: E402
from glassnet.apps.benchmark.run import cpu_model  # noqa: E402
from glassnet.nn.layers import Conv2D, Dense  # noqa: E402
from glassnet.nn.layers.conv import winograd_pays  # noqa: E402

TARGET = 1.5        # issue 28: glassnet's inference within 1.5x of ONNX Runtime's time


def arithmetic(model, input_shape, samples, rng):
    """{kind: [zero-argument functions]}: the products (and depthwise tap passes) of one inference."""
    kinds = {"columns": [], "pointwise": [], "winograd": [], "depthwise": [], "dense": []}
    shapes = model.graph.value_shapes([input_shape])
    for layer_index, sources in model.graph.nodes:
        layer = model.layers[layer_index]
        if isinstance(layer, Conv2D):
            (C, H, W), (F, OH, OW) = shapes[sources[0]], layer.output_shape(shapes[sources[0]])
            kinds_of_conv(kinds, layer, samples, (C, H, W), (F, OH, OW), rng)
        elif isinstance(layer, Dense):
            x = random(rng, samples, layer.in_features)
            weight = random(rng, layer.in_features, layer.out_features)
            out = random(rng, samples, layer.out_features)
            kinds["dense"].append(lambda x=x, w=weight, out=out: np.matmul(x, w, out=out))
    return kinds


def kinds_of_conv(kinds, layer, samples, input_shape, output_shape, rng):
    (C, _, _), (F, OH, OW), (kh, kw) = input_shape, output_shape, layer.kernel_size
    if layer.depthwise:
        # no product: one multiply and one add per tap and output value, at the best rate NumPy reaches on
        # a block that stays in cache (in_cache_tap_rate); the batch's taps as that many block passes
        blocks = samples * F * OH * OW * kh * kw / BLOCK
        kinds["depthwise"].append(lambda blocks=blocks: in_cache_taps(blocks))
    elif layer.pointwise:
        weight, x, out = random(rng, F, C), random(rng, samples, C, OH * OW), random(rng, samples, F, OH * OW)
        kinds["pointwise"].append(lambda w=weight, x=x, out=out: np.matmul(w, x, out=out))
    elif layer.winograd and winograd_pays(C, F, samples, OH, OW):
        tiles = samples * ((OH + 1) // 2) * ((OW + 1) // 2)
        U, V, M = random(rng, 16, F, C), random(rng, 16, C, tiles), random(rng, 16, F, tiles)
        kinds["winograd"].append(lambda U=U, V=V, M=M: np.matmul(U, V, out=M))
    else:
        inner = C // layer.groups * kh * kw
        weight, cols = random(rng, F, inner), random(rng, inner * layer.groups, samples * OH * OW)
        out = random(rng, layer.groups, F // layer.groups, samples * OH * OW)
        kinds["columns"].append(lambda w=weight, c=cols, out=out: grouped(w, c, out))


BLOCK = 1 << 15                   # output values per block (128 KiB in float32: depthwise.py's block until session 15)
_block = [np.ones(BLOCK, dtype=np.float32) for _ in range(3)]


def in_cache_taps(blocks):
    """``blocks`` passes of one tap (a multiply into a buffer, an add into the output) over a block in cache,
    the whole passes run and the fraction timed in proportion (a floor: no reads of the input from memory)."""
    view, product, out = _block
    whole = int(blocks)
    for _ in range(whole):
        np.multiply(view, 0.5, out=product)
        out += product
    part = int((blocks - whole) * BLOCK)
    np.multiply(view[:part], 0.5, out=product[:part])
    out[:part] += product[:part]


def grouped(weight, cols, out):
    """The columns' product per group, into ``out`` (groups, F/groups, P)."""
    groups, F, K = out.shape[0], weight.shape[0], weight.shape[1]
    return np.matmul(np.reshape(weight, (groups, F // groups, K)), np.reshape(cols, (groups, K, -1)), out=out)


def random(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nets", nargs="*", default=["vgg16", "resnet50", "mobilenet_v2"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one timed repeat")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_info, threadpool_limits
    threadpool_limits(2)
    blas = "; ".join(f"{p['internal_api']} {p['version']} {p.get('architecture')}" for p in threadpool_info()
                     if p["user_api"] == "blas")
    print(f"float32, batch {args.batch}, {args.image_size}x{args.image_size}, 2 threads, median of {args.repeats} "
          f"interleaved repeats; NumPy {np.__version__} ({blas}); {cpu_model()}")
    print(f"{'net':13} {'ORT ms':>8} {'target ms':>10} {'glassnet ms':>12} {'floor ms':>9}  floor by kind (ms)")
    rng = np.random.default_rng(0)
    for net in args.nets:
        model, shape, _, _ = large.load(net, args.image_size, np.float32)
        x = random(rng, args.batch, *shape)
        kinds = arithmetic(model, shape, args.batch, rng)
        with tempfile.TemporaryDirectory() as folder:
            session = large.onnx_runtime(model, None, 2, folder)
            steps = large.inference_steps(model, session, None, None, x)
            steps.update({kind: (lambda calls=calls: [call() for call in calls]) for kind, calls in kinds.items()
                          if calls})
            rates = measure.side_by_side(steps, 1, args.repeats, args.seconds, warmup=1, pause=large.PAUSE)
        ms = {name: 1e3 / figures["median"] for name, figures in rates.items()}
        floor = sum(ms[kind] for kind in kinds if kinds[kind])
        by_kind = ", ".join(f"{kind} {ms[kind]:.1f}" for kind in kinds if kinds[kind])
        print(f"{net:13} {ms['onnxruntime']:>8.1f} {TARGET * ms['onnxruntime']:>10.1f} {ms['glassnet']:>12.1f} "
              f"{floor:>9.1f}  {by_kind}", flush=True)


if __name__ == "__main__":
    main()
