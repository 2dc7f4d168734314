"""``glassnet bench``: glassnet and PyTorch side by side on the same nets, data, optimizer and dtype.

Writes ``bench.json`` and ``bench.md`` into the output folder and prints the Markdown.
``--smoke`` runs every part for a few steps only (CI uses it so the benchmark cannot rot).
"""
import argparse
import json
import os
import platform
import time

import numpy as np

from ...errors import GlassnetError
from ...atomic import writable_folder, write_text
from ...models import presets
from ...nn.losses import SoftmaxCrossEntropy
from . import measure
from .report import render_markdown
from .cases import CASES, batch, glassnet_trainer, torch_trainer, glassnet_optimizer
from .epoch import epoch_markdown, epoch_report
from .large import TRAIN_BATCH, model_markdown, model_report
from .layers import layer_timings, layers_markdown
from .seed_loops import SeedStyleNet

SCALING_BATCHES = (16, 32, 64, 128, 256, 512)


def build_parser(parser=None):
    parser = parser or argparse.ArgumentParser(prog="glassnet bench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmark-results", help="folder for bench.json and bench.md")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=2, help="BLAS and PyTorch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per figure; the median is kept")
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one timed repeat")
    parser.add_argument("--smoke", action="store_true", help="a few steps of everything (for CI)")
    parser.add_argument("--profile", action="store_true", help="also print glassnet's per-layer profile")
    parser.add_argument("--no-torch", action="store_true", help="time glassnet alone")
    parser.add_argument("--epoch", metavar="DATASET",
                        help="instead: one whole training epoch of DATASET (e.g. fashion_mnist) in glassnet and "
                             "in a plain PyTorch loop, wall time and test accuracy of each (default: the "
                             "per-step figures)")
    parser.add_argument("--layers", action="store_true",
                        help="instead: only the layers of real architectures (depthwise and grouped convolution, "
                             "a MobileNetV2 block), forward and backward, against PyTorch")
    parser.add_argument("--arch", default="simple", choices=sorted(presets.ARCHITECTURES),
                        help="the architecture --epoch trains (e.g. resnet_mini)")
    parser.add_argument("--model", metavar="NAME_OR_FILE",
                        help="instead: a large net's inference in glassnet, ONNX Runtime and PyTorch, and one "
                             "training step: vgg16, resnet50, mobilenet_v2 (random weights) or an .onnx file "
                             "(default: the per-step figures)")
    parser.add_argument("--batches", type=batch_list, default=(1, 8), metavar="1,8",
                        help="--model: the inference batch sizes (default 1,8)")
    parser.add_argument("--image-size", type=int, default=224, help="--model: H and W of a built-in net's input")
    parser.add_argument("--train-batch", type=int, default=TRAIN_BATCH, help="--model: the training step's batch")
    parser.add_argument("--no-train", action="store_true", help="--model: inference only")
    return parser


def batch_list(text):
    """'1,8' -> (1, 8): positive batch sizes."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected batch sizes such as 1,8. Received: {text!r}")
    return sizes


def environment(threads, torch):
    info = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), "threads": threads, "torch": torch.__version__ if torch else None}
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [{key: entry.get(key) for key in ("internal_api", "version", "architecture", "num_threads")}
                        for entry in threadpool_info() if entry.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = "unknown (pip install threadpoolctl)"
    return info


def _torch_or_none(disabled):
    if disabled:
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch


def use_threads(count, torch):
    """``count`` threads for the BLAS, glassnet's batch split (replicas.py) and PyTorch alike."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(count)
    os.environ["GLASSNET_THREADS"] = str(count)
    if torch is not None:
        torch.set_num_threads(count)


def frameworks(args):
    """Check the settings and the tools, set the threads; returns torch (or None when absent or --no-torch)."""
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        raise GlassnetError("glassnet bench needs threadpoolctl to set and report BLAS threads: "
                            "pip install 'glassnet[bench]'") from None
    if args.threads < 1 or args.repeats < 1 or args.seconds <= 0:
        raise GlassnetError(f"bench: --threads and --repeats must be at least 1 and --seconds positive. "
                            f"Received: {args.threads}, {args.repeats}, {args.seconds}")
    torch = _torch_or_none(args.no_torch)
    use_threads(args.threads, torch)
    return torch


def time_case(case, dtype, torch, repeats, seconds, batch_size=None):
    """Training and inference images/s of glassnet (and PyTorch) on one case."""
    x, y = batch(case, dtype, batch_size=batch_size)
    n = x.shape[0]
    model, glass_train, glass_infer = glassnet_trainer(case, dtype)
    train_steps = {"glassnet": lambda: glass_train(x, y)}
    infer_steps = {"glassnet": lambda: glass_infer(x)}
    if torch is not None:
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        twin, torch_train, torch_infer = torch_trainer(case, dtype)
        train_steps["pytorch"] = lambda: torch_train(tx, ty)
        infer_steps["pytorch"] = lambda: torch_infer(tx)
    train = measure.side_by_side(train_steps, n, repeats, seconds)
    model.eval()                  # inference in evaluation mode on both sides (BatchNorm's running statistics)
    if torch is not None:
        twin.eval()
    infer = measure.side_by_side(infer_steps, n, repeats, seconds)
    return {"batch_size": n, "train": train, "infer": infer}


def seed_loop_rate(repeats, seconds):
    """Per-sample training images/s of the seed-style loop code (float64, as the seed)."""
    net = SeedStyleNet()
    x, y = batch(CASES["seed001"], np.float64, batch_size=1)
    image, label = x[0, 0], int(y[0])
    result = measure.side_by_side({"seed loops": lambda: net.train_step(image, label)}, 1, repeats, seconds,
                                  warmup=1)
    return result["seed loops"]["median"]


def thread_scaling(args, torch, repeats, seconds):
    """Training img/s of both reference nets with 1 thread and with ``args.threads`` (BLAS, glassnet's
    batch split and PyTorch alike)."""
    figures = {}
    for count in sorted({1, args.threads}):
        use_threads(count, torch)
        for name in ("simple", "lenet"):
            figures.setdefault(name, {})[str(count)] = time_case(CASES[name], args.dtype, torch, max(1, repeats // 2),
                                                                 seconds)["train"]
    use_threads(args.threads, torch)
    return figures


def ratio(result, kind):
    figures = result[kind]
    if "pytorch" not in figures:
        return None
    return figures["glassnet"]["median"] / figures["pytorch"]["median"]


def run(args):
    """Every figure of the benchmark as a JSON-ready dict (see ``render_markdown``)."""
    torch = frameworks(args)
    repeats, seconds = (1, 0.01) if args.smoke else (args.repeats, args.seconds)
    started = time.perf_counter()
    report = {"environment": environment(args.threads, torch), "dtype": args.dtype, "smoke": args.smoke,
              "repeats": repeats, "cases": {}, "scaling": {}, "memory": {}}
    for name, case in CASES.items():
        report["cases"][name] = time_case(case, args.dtype, torch, repeats, seconds)
        report["cases"][name]["description"] = case.description
        for framework in ("glassnet", "pytorch") if torch else ("glassnet",):
            report["memory"].setdefault(name, {})[framework] = measure.peak_memory(
                "torch" if framework == "pytorch" else "glassnet", name, args.dtype, args.threads, steps=3)
    report["seed_loops_img_s"] = seed_loop_rate(repeats, max(seconds, 0.2) if not args.smoke else 0.01)
    batches = SCALING_BATCHES[:2] if args.smoke else SCALING_BATCHES
    for name in ("simple", "lenet"):
        report["scaling"][name] = {
            str(b): time_case(CASES[name], args.dtype, torch, max(1, repeats // 2), seconds, batch_size=b)["train"]
            for b in batches}
    report["threads"] = thread_scaling(args, torch, repeats, seconds)
    report["layers"] = layer_timings(args.dtype, torch, repeats, seconds)
    if args.profile or args.smoke:
        report["profile"] = {}
        for name in ("simple", "lenet"):
            case = CASES[name]
            x, y = batch(case, args.dtype)
            model, _, _ = glassnet_trainer(case, args.dtype)
            rows = measure.profile(model, SoftmaxCrossEntropy(), glassnet_optimizer(model, case.optimizer), x, y,
                                   steps=2 if args.smoke else 20)
            report["profile"][name] = rows
    report["seconds"] = time.perf_counter() - started
    return report


def run_epoch(args):
    """The ``--epoch`` benchmark as a JSON-ready dict."""
    torch = frameworks(args)
    started = time.perf_counter()
    report = {"environment": environment(args.threads, torch), "dtype": args.dtype,
              "epoch": epoch_report(args.epoch, np.dtype(args.dtype), torch, args.arch)}
    report["seconds"] = time.perf_counter() - started
    return report


def run_layers(args):
    """The ``--layers`` benchmark as a JSON-ready dict."""
    torch = frameworks(args)
    repeats, seconds = (1, 0.01) if args.smoke else (args.repeats, args.seconds)
    started = time.perf_counter()
    report = {"environment": environment(args.threads, torch), "dtype": args.dtype,
              "layers": layer_timings(args.dtype, torch, repeats, seconds)}
    report["seconds"] = time.perf_counter() - started
    return report


def run_model(args):
    """The ``--model`` benchmark as a JSON-ready dict."""
    if args.image_size < 1 or args.train_batch < 1:
        raise GlassnetError(f"bench --model: --image-size and --train-batch must be at least 1. "
                            f"Received: {args.image_size}, {args.train_batch}")
    torch = frameworks(args)
    started = time.perf_counter()
    report = {"environment": environment(args.threads, torch), "dtype": args.dtype, "cpu": cpu_model(),
              "large": model_report(args, torch)}
    report["seconds"] = time.perf_counter() - started
    return report


def cpu_model():
    """lscpu's model name, and whether the CPU has AVX-512 (its figures depend on it), on Linux."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or "unknown"
    names = [line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")]
    return f"{names[0] if names else 'unknown'} ({'AVX-512' if 'avx512f' in info else 'no AVX-512'})"


def main(argv=None):
    """Entry point of ``benchmarks/run.py``; ``argv`` is a list of arguments or parsed ``args``."""
    args = argv if isinstance(argv, argparse.Namespace) else build_parser().parse_args(argv)
    out = writable_folder(args.out)                 # checked before minutes of timing, not after
    if args.layers:
        report = run_layers(args)
        markdown, stem = "\n".join(layers_markdown(report["layers"])).strip(), "bench-layers"
    elif args.model:
        report = run_model(args)
        markdown = "\n".join([f"CPU: {report['cpu']}; NumPy {report['environment']['numpy']}", ""]
                             + model_markdown(report["large"]))
        stem = "bench-model"
    else:
        report = run_epoch(args) if args.epoch else run(args)
        markdown = epoch_markdown(report["epoch"]) if args.epoch else render_markdown(report)
        stem = "bench-epoch" if args.epoch else "bench"
    write_text(out / f"{stem}.json", json.dumps(report, indent=2))
    write_text(out / f"{stem}.md", markdown)
    print(markdown)
    print(f"\nwritten: {out / (stem + '.json')}, {out / (stem + '.md')} ({report['seconds']:.0f} s)")
    return 0

