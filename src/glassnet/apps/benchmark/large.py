"""``glassnet bench --model``: a large net in glassnet, ONNX Runtime and PyTorch, side by side.

The net is a built-in ImageNet architecture (``vgg16``, ``resnet50``, ``mobilenet_v2``: random weights,
``glassnet.models.imagenet``) or an ONNX file. glassnet runs it as imported (or built); ONNX Runtime runs
the ONNX file (for a built-in net, the file ``gn.export_onnx`` writes of it), with ``threads`` intra-op
threads; PyTorch runs ``gn.to_torch`` of the glassnet model, so all three compute the same function with
the same weights. Inference is timed at each batch size (evaluation mode, no gradients), interleaved,
median of the repeats; then one training step (forward, cross-entropy against random labels, backward,
SGD with momentum 0.9) in glassnet and PyTorch, and each one's peak memory for that step in a fresh
process. Figures, never assertions.
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ...errors import GlassnetError
from ...models import imagenet, presets
from . import measure

TRAIN_BATCH = 8
PAUSE = 0.5    # seconds of rest before each timed repeat: the last framework's spinning threads fall asleep


def load(spec, image_size, dtype):
    """(glassnet model in evaluation mode, input shape (C, H, W), ONNX path or None, label) for ``spec``:
    a built-in architecture's name or an ONNX file."""
    if spec in imagenet.ARCHITECTURES:
        shape = (3, image_size, image_size)
        model = presets.build(spec, shape, imagenet.CLASSES, seed=0, dtype=dtype)
        return model.eval(), shape, None, f"{spec} (random weights, {image_size}x{image_size})"
    path = Path(spec)
    if path.suffix.lower() != ".onnx" or not path.is_file():
        raise GlassnetError(f"bench --model: expected one of {', '.join(imagenet.ARCHITECTURES)} or an .onnx file. "
                            f"Received: {spec!r}")
    from ...files.onnx_format import import_onnx
    model = import_onnx(path)
    return model.astype(dtype).eval(), tuple(model.metadata["input_shape"]), path, path.name


def onnx_runtime(model, onnx_path, threads, folder):
    """An ONNX Runtime session on ``onnx_path`` (written by ``gn.export_onnx`` into ``folder`` when None) with
    ``threads`` intra-op threads, or None when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    if onnx_path is None:
        from ...files.onnx_format import export_onnx
        onnx_path = Path(folder) / "model.onnx"
        export_onnx(model, onnx_path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return session


def runtime_input(session, x):
    """``x`` (N, C, H, W) laid out as the ONNX file's input wants it (NHWC for a Keras export)."""
    declared = session.get_inputs()[0].shape
    C, H, W = x.shape[1:]
    if len(declared) == 4 and declared[3] == C and declared[1] != C:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return x


def inference_steps(model, session, twin, torch, x):
    """Zero-argument functions running one inference of the batch ``x`` in each framework present."""
    steps = {"glassnet": lambda: model.infer(x)}
    if session is not None:
        name, fed = session.get_inputs()[0].name, runtime_input(session, x)
        steps["onnxruntime"] = lambda: session.run(None, {name: fed})
    if twin is not None:
        tx = torch.from_numpy(x)

        def torch_infer():
            with torch.no_grad():
                return twin(tx)
        steps["pytorch"] = torch_infer
    return steps


def training_steps(model, twin, torch, x, y):
    """One training step (forward, softmax cross-entropy, backward, SGD momentum 0.9 at lr 0.01) of each."""
    from ...nn.losses import SoftmaxCrossEntropy
    from ...training.loop import resolve_optimizer
    loss, optimizer = SoftmaxCrossEntropy(), resolve_optimizer(model, "momentum", 0.01)

    def glass_step():
        loss.forward(model.forward(x), y)
        model.backward(loss.backward(), input_grad=False)
        optimizer.step()
    steps = {"glassnet": glass_step}
    if twin is not None:
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        torch_loss = torch.nn.CrossEntropyLoss()
        torch_optimizer = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)

        def torch_step():
            torch_optimizer.zero_grad(set_to_none=True)
            torch_loss(twin(tx), ty).backward()
            torch_optimizer.step()
        steps["pytorch"] = torch_step
    return steps


def class_count(model, x):
    """The classes the model scores (its output's last axis), from one sample of ``x``."""
    return int(model.forward(x[:1]).shape[-1])


def milliseconds(rates, images):
    """measure.side_by_side's images/s -> median milliseconds per call, per framework."""
    return {name: images / figures["median"] * 1e3 for name, figures in rates.items()}


def model_report(args, torch):
    """Every figure of ``bench --model`` as a JSON-ready dict (see ``model_markdown``)."""
    dtype = np.dtype(args.dtype)
    repeats, seconds, pause = (1, 0.01, 0.0) if args.smoke else (args.repeats, args.seconds, PAUSE)
    model, shape, onnx_path, label = load(args.model, args.image_size, dtype)
    report = {"model": label, "input_shape": list(shape), "parameters": model.num_params(), "inference": {},
              "threads": args.threads}
    with tempfile.TemporaryDirectory() as folder:
        session = onnx_runtime(model, onnx_path, args.threads, folder)
        twin = None
        if torch is not None:
            from ...files.torch_convert import to_torch
            twin = to_torch(model).eval()
        rng = np.random.default_rng(0)
        for batch_size in args.batches:
            x = rng.standard_normal((batch_size,) + shape).astype(dtype)
            steps = inference_steps(model, session, twin, torch, x)
            report["inference"][str(batch_size)] = milliseconds(
                measure.side_by_side(steps, batch_size, repeats, seconds, warmup=1, pause=pause), batch_size)
        if not args.no_train:
            x = rng.standard_normal((args.train_batch,) + shape).astype(dtype)
            y = rng.integers(0, class_count(model, x), args.train_batch)
            model.train()
            if twin is not None:
                twin.train()
            steps = training_steps(model, twin, torch, x, y)
            report["train"] = {"batch_size": args.train_batch, "ms": milliseconds(
                measure.side_by_side(steps, args.train_batch, repeats, seconds, warmup=1, pause=pause),
                args.train_batch)}
            report["train"]["peak_bytes"] = {
                framework: train_peak_memory(framework, args, onnx_path) for framework in steps}
    return report


def train_peak_memory(framework, args, onnx_path):
    """Peak resident memory (bytes) one training step adds, in a fresh process (None if it failed)."""
    spec = str(onnx_path) if onnx_path is not None else args.model
    command = [sys.executable, "-m", "glassnet.apps.benchmark.large", framework, spec, str(args.image_size),
               args.dtype, str(args.threads), str(args.train_batch)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800,
                          env=measure.memory_environment())
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"]


def _memory_child(argv):
    """Child process of ``train_peak_memory``: build, reset the peak, run one training step, print it."""
    framework, spec, image_size, dtype, threads, batch_size = argv
    from threadpoolctl import threadpool_limits
    threadpool_limits(int(threads))
    torch = None
    model, shape, _, _ = load(spec, int(image_size), np.dtype(dtype))
    twin = None
    if framework == "pytorch":
        import torch
        from ...files.torch_convert import to_torch
        torch.set_num_threads(int(threads))
        twin = to_torch(model).train()
    model.train()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((int(batch_size),) + shape).astype(dtype)
    y = rng.integers(0, class_count(model, x), int(batch_size))
    step = training_steps(model, twin, torch, x, y)[framework]
    if twin is not None:
        model = None            # only the twin's weights count for PyTorch
    baseline = measure.reset_peak_memory()
    step()
    print(json.dumps({"peak_bytes": measure.peak_since(baseline)}))


def model_markdown(report):
    """The ``bench --model`` figures as Markdown lines."""
    lines = [f"{report['model']}: {report['parameters']:,} parameters, input {tuple(report['input_shape'])}, "
             f"{report['threads']} threads (ONNX Runtime: intra-op threads), median ms of the interleaved repeats",
             "", "| batch | glassnet ms | ONNX Runtime ms | PyTorch ms | glassnet / ONNX Runtime | "
             "glassnet / PyTorch |", "|---|---|---|---|---|---|"]
    for batch_size, figures in report["inference"].items():
        glass = figures["glassnet"]
        lines.append(f"| {batch_size} | {glass:,.1f} | {_ms(figures.get('onnxruntime'))} | "
                     f"{_ms(figures.get('pytorch'))} | {_times(glass, figures.get('onnxruntime'))} | "
                     f"{_times(glass, figures.get('pytorch'))} |")
    if "train" in report:
        train = report["train"]
        figures, peaks = train["ms"], train["peak_bytes"]
        lines += ["", f"One training step at batch {train['batch_size']} (SGD momentum): glassnet "
                      f"{figures['glassnet']:,.1f} ms, PyTorch {_ms(figures.get('pytorch'))} ms "
                      f"(glassnet takes {_times(figures['glassnet'], figures.get('pytorch'))} PyTorch's time); "
                      f"peak memory glassnet {_mib(peaks.get('glassnet'))} MiB, PyTorch {_mib(peaks.get('pytorch'))} "
                      f"MiB ({_times(peaks.get('glassnet'), peaks.get('pytorch'))})"]
    return lines


def _ms(value):
    return "n/a" if value is None else f"{value:,.1f}"


def _mib(value):
    return "n/a" if value is None else f"{value / 2 ** 20:,.0f}"


def _times(numerator, denominator):
    return "n/a" if numerator is None or not denominator else f"{numerator / denominator:.2f}x"


if __name__ == "__main__":
    _memory_child(sys.argv[1:])
