"""The ``glassnet`` command: train, evaluate, predict, summary, datasets.

Exit status: 0 on success, 2 on usage errors (argparse), 1 with a one-line message on
any user error (missing file, not an image, damaged model file, ...).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..backend import DEVICES, resolve_device
from ..data import datasets
from ..data.augment import Augment
from ..data.imageset import ImageSet
from ..data.preprocessing import image_to_input, kind_of
from ..errors import GlassnetError
from ..files.serialization import load, load_checkpoint, save
from ..models import presets
from ..nn.layers import Conv2D
from ..see import plots
from ..see.explain import NET_HELP, explain_network, parse_net, seed_example
from ..training.distributed import world
from ..training.loop import accuracy, resolve_loss
from .benchmark.run import build_parser as benchmark_parser


DATASET_CHOICES = sorted(datasets.LOADERS) + ["folder"]


def build_parser():
    parser = argparse.ArgumentParser(prog="glassnet", description="Train, save and use NumPy CNNs.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model on a dataset and save it")
    train.add_argument("--dataset", choices=DATASET_CHOICES, help="required unless --resume")
    train.add_argument("--arch", choices=sorted(presets.ARCHITECTURES))
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--optimizer", choices=["sgd", "momentum", "adam"])
    train.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    train.add_argument("--distributed", action="store_true",
                       help="data-parallel over the processes of mpiexec -n N (pip install 'glassnet[mpi]'); "
                            "rank 0 prints and writes")
    train.add_argument("--device", choices=sorted(DEVICES), default="cpu",
                       help="where the arithmetic runs: " + "; ".join(f"{k}: {v}" for k, v in DEVICES.items()))
    train.add_argument("--seed", type=int, help="weight and shuffling seed (default: the dataset's, else 0)")
    train.add_argument("--data-dir", help="folder holding the IDX files (fashion_mnist, mnist) or the "
                                            "class sub-folders (folder)")
    train.add_argument("--image-size", type=int, help="folder/shapes: images resized to N x N (default 32; 28 "
                                                      "for --kind digit)")
    train.add_argument("--channels", type=int, choices=[1, 3], default=3, help="folder: 3 colour, 1 grey")
    train.add_argument("--kind", choices=["resize", "digit"], default="resize",
                       help="folder: 'resize' any picture (default) or 'digit' (the MNIST convention)")
    train.add_argument("--augment", help="change training batches at random: any of shift,flip,rotate,scale")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument("--out", required=True, help="where to save the model file")
    train.add_argument("--plots", metavar="DIR", help="write training curves, gradient norms, filters, confusion "
                                                     "matrix and misclassified test images here (PNG); the "
                                                     "test split is then evaluated after every epoch")
    train.add_argument("--checkpoint", help="write a checkpoint here after every epoch (previous kept as .prev)")
    train.add_argument("--checkpoint-every", type=int, help="also checkpoint after every N batches")
    train.add_argument("--resume", metavar="CHECKPOINT",
                       help="continue the run that wrote CHECKPOINT, with its dataset and settings")

    evaluate = commands.add_parser("evaluate", help="evaluate a saved model on a dataset's test split")
    evaluate.add_argument("model")
    evaluate.add_argument("--dataset", required=True, choices=DATASET_CHOICES)
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--plots", metavar="DIR", help="write the confusion matrix, misclassified test images "
                                                        "and first-layer filters here (PNG)")

    inspect = commands.add_parser("inspect", help="pictures of a model looking at one image: feature maps, filters")
    inspect.add_argument("model")
    inspect.add_argument("image")
    inspect.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files")

    predict = commands.add_parser("predict", help="classify image files with a saved model")
    predict.add_argument("model")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--top-k", type=int, default=1)
    predict.add_argument("--json", action="store_true")

    summary = commands.add_parser("summary", help="print a saved model's layers and parameter counts")
    summary.add_argument("model")

    datasets_command = commands.add_parser("datasets", help="list the datasets and whether they are available here; "
                                                            "export one as an image folder")
    actions = datasets_command.add_subparsers(dest="action")
    export = actions.add_parser("export", help="write a dataset as image files, one sub-folder per class")
    export.add_argument("name", choices=["shapes"])
    export.add_argument("folder", help="a new (or empty) folder")
    export.add_argument("--count", type=int, default=3000)
    export.add_argument("--size", type=int, default=32)
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--format", choices=["png", "jpeg"], default="png")

    explain = commands.add_parser("explain", help="print every array of one forward and backward pass",
                                  description="With no arguments: seed 000's worked example, done right. "
                                              "With --model and --image: a saved model on an image file. "
                                              "With --net and --input: a small network of your own.")
    explain.add_argument("--model", help="a saved model file (with --image)")
    explain.add_argument("--image", help="an image file for --model")
    explain.add_argument("--net", help=NET_HELP)
    explain.add_argument("--input", help="input shape for --net, e.g. 1x6x6 or 4")
    explain.add_argument("--label", type=int, help="target class (default: the predicted class; 0 for --net)")
    explain.add_argument("--lr", type=float, default=0.1, help="learning rate of the SGD step shown (default 0.1)")
    explain.add_argument("--seed", type=int, default=0, help="weights and input of --net")
    explain.add_argument("--max-elements", type=int, default=64,
                         help="print arrays up to this size whole, summarise larger ones (default 64)")

    studio = commands.add_parser("studio", help="a local web page on a model: draw, see every number, train live",
                                 description="Serve the glassnet studio on this machine and open it in the "
                                             "browser. Needs the extra: pip install 'glassnet[studio]'.")
    studio.add_argument("model", nargs="?", help="a saved model file (without one, the page offers to train one)")
    studio.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this "
                                                            "machine only)")
    studio.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    studio.add_argument("--no-browser", action="store_true", help="do not open a browser")

    export = commands.add_parser("export", help="write a saved model as an ONNX file")
    export.add_argument("model")
    export.add_argument("--onnx", required=True, metavar="OUT", help="the ONNX file to write")

    import_command = commands.add_parser("import", help="read an ONNX file into a glassnet model file")
    import_command.add_argument("file", help="an ONNX file (a chain of Conv, pools, Flatten/Reshape, Gemm/MatMul, "
                                             "BatchNormalization and activations)")
    import_command.add_argument("--out", required=True, help="the glassnet model file to write")
    import_command.add_argument("--dataset", choices=sorted(datasets.LOADERS),
                                help="take this dataset's preprocessing and class names, so that predict, explain "
                                     "and inspect can read image files with the model")

    bench = commands.add_parser("bench", help="time glassnet against PyTorch on the same nets (benchmarks/)")
    benchmark_parser(bench)

    sweep = commands.add_parser("sweep", help="one training run per combination of settings, on Ray Tune",
                                description="Train every combination of --arch, --lr, --batch-size and --optimizer "
                                            "on Ray Tune, print a table sorted by validation accuracy, write it as "
                                            "CSV and JSON and save the best model, all inside --out. Needs "
                                            "pip install 'glassnet[sweep]'.")
    sweep.add_argument("--dataset", required=True, choices=sorted(datasets.LOADERS))
    sweep.add_argument("--arch", required=True, type=word_list, help="comma-separated, e.g. lenet,mlp")
    sweep.add_argument("--lr", required=True, type=number_list(float), help="comma-separated, e.g. 0.01,0.001")
    sweep.add_argument("--batch-size", type=number_list(int), default=[32], help="comma-separated (default 32)")
    sweep.add_argument("--optimizer", type=word_list, default=["adam"], help="comma-separated sgd, momentum, adam")
    sweep.add_argument("--epochs", type=int, required=True)
    sweep.add_argument("--scheduler", choices=["asha"], help="stop trials that fall behind early (ASHA)")
    sweep.add_argument("--parallel", type=int, default=2, help="trials at once (default 2)")
    sweep.add_argument("--address", help="an existing Ray cluster (ray start --head); default: a local Ray")
    sweep.add_argument("--out", required=True, help="folder for Ray's files, the results and best.glassnet")
    return parser


def word_list(text):
    words = [word.strip() for word in text.split(",") if word.strip()]
    if not words:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list. Received: {text!r}")
    return words


def number_list(kind):
    def parse(text):
        try:
            return [kind(word) for word in word_list(text)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s. Received: {text!r}") from None
    return parse


def command_sweep(args):
    unknown = [arch for arch in args.arch if arch not in presets.ARCHITECTURES]
    bad_optimizers = [name for name in args.optimizer if name not in ("sgd", "momentum", "adam")]
    if unknown or bad_optimizers:
        raise GlassnetError(f"sweep: unknown architecture(s) {unknown} or optimizer(s) {bad_optimizers}; "
                            f"architectures: {', '.join(presets.ARCHITECTURES)}; optimizers: sgd, momentum, adam")
    if args.epochs < 1 or args.parallel < 1 or any(b < 1 for b in args.batch_size) or any(lr <= 0 for lr in args.lr):
        raise GlassnetError("sweep: --epochs, --parallel and batch sizes must be at least 1 and learning rates > 0")
    from .sweep import run_sweep
    run_sweep(args.dataset, args.arch, args.lr, args.batch_size, args.optimizer, args.epochs, args.out,
              scheduler=args.scheduler, parallel=args.parallel, address=args.address)


def test_line(model, dataset, loss_name):
    """``test accuracy: ...`` (classification) or ``test mse: ...`` (regression) on the test split.

    A classifier trained with MSE (XOR) has one output per target, judged correct on the
    right side of 0.5, as binary cross-entropy judges it.
    """
    loss_value, accuracy_value = model.evaluate(dataset.x_test, dataset.y_test, loss=loss_name)
    if dataset.task == "regression":
        return f"test mse: {loss_value:.4f}"
    if accuracy_value is None:
        accuracy_value = accuracy(resolve_loss("binary_cross_entropy"), model.predict(dataset.x_test), dataset.y_test)
    return f"test accuracy: {accuracy_value:.4f}"


def command_train(args):
    if args.resume:
        model, dataset, settings = _resumed_run(args.resume)
        checkpoint = args.resume
    else:
        settings = dict(presets.DEFAULTS[args.dataset])
        if args.dataset == "folder" and args.kind == "digit":
            settings["arch"] = "lenet"
        for key in ("arch", "epochs", "batch_size", "lr", "optimizer", "augment"):
            if getattr(args, key) is not None:
                settings[key] = getattr(args, key)
        settings.update(dataset=args.dataset, data_dir=args.data_dir, dtype=args.dtype,
                        seed=args.seed if args.seed is not None else settings.get("seed", 0),
                        checkpoint_every=args.checkpoint_every, image_size=args.image_size,
                        channels=args.channels, kind=args.kind)
        if settings.get("augment"):
            Augment.parse(settings["augment"])          # a bad spelling fails now, before any decoding
        dataset = load_dataset(settings)
        model = presets.build_for_dataset(dataset, settings)
        checkpoint = args.checkpoint
    if args.plots:
        Path(args.plots).mkdir(parents=True, exist_ok=True)  # fail now, not after training
    xp, device = resolve_device(args.device)
    model.to(xp, device)
    root = not args.distributed or world().is_root
    if not root:
        args.quiet, args.plots = True, None           # only rank 0 prints and writes
    log = (lambda line: None) if args.quiet else print
    for note in dataset.notes if root else ():
        print(f"note: {note}", file=sys.stderr)
    augment = settings.get("augment")
    log(f"training {settings['arch']} on {dataset.description}: {settings['epochs']} epochs, batch "
        f"{settings['batch_size']}, {settings['optimizer']} lr {settings['lr']}, {settings['dtype']}"
        + (f", on {args.device}" if args.device != "cpu" else "")
        + (f", augment {Augment.parse(augment).describe()}" if augment else ""))
    started = time.perf_counter()
    history = model.fit(dataset.x_train, dataset.y_train, epochs=settings["epochs"],
                        batch_size=settings["batch_size"],
                        loss=settings["loss"], optimizer=settings["optimizer"], lr=settings["lr"],
                        seed=settings["seed"], verbose=not args.quiet, log=log, checkpoint=checkpoint,
                        validation_data=(dataset.x_test, dataset.y_test) if args.plots else None,
                        checkpoint_every=settings["checkpoint_every"], resume=bool(args.resume),
                        augment=settings.get("augment"), distributed=args.distributed)
    seconds = time.perf_counter() - started
    if not root:
        return
    line = test_line(model, dataset, settings["loss"])
    path = save(model, args.out)
    print(f"trained in {seconds:.1f} s; model saved to {path}")
    if args.plots:
        written = [plots.training_curves(history, Path(args.plots) / "training_curves.png"),
                   plots.gradient_norms(history, Path(args.plots) / "gradient_norms.png")]
        written += test_set_pictures(model, dataset, args.plots)
        print("pictures: " + ", ".join(map(str, written)))
    print(line)


def test_set_pictures(model, dataset, folder):
    """Confusion matrix, misclassified gallery and filters for a classifier on image data."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if any(isinstance(layer, Conv2D) for layer in model.layers):
        written.append(plots.filters(model, folder / "filters.png"))
    if dataset.task == "classification" and dataset.y_test.ndim == 1:
        predictions = model.predict(dataset.x_test).argmax(axis=1)
        names = dataset.class_names
        written.append(plots.confusion_matrix(dataset.y_test, predictions, names, folder / "confusion_matrix.png"))
        if dataset.x_test.ndim == 4:
            written.append(plots.misclassified(dataset.x_test, dataset.y_test, predictions, names,
                                               folder / "misclassified.png"))
    return written


def _resumed_run(checkpoint_path):
    """The model, dataset and settings of the run that wrote ``checkpoint_path``."""
    saved = load_checkpoint(checkpoint_path)
    settings = saved.model.metadata.get("training")
    keys = ("dataset", "data_dir", "arch", "epochs", "batch_size", "lr", "optimizer", "loss", "seed", "dtype",
            "checkpoint_every")
    if not isinstance(settings, dict) or any(key not in settings for key in keys):
        raise GlassnetError(f"{saved.path}: this checkpoint was not written by 'glassnet train' "
                            "(no training settings); resume it from Python with fit(..., resume=True)")
    return saved.model, load_dataset(settings), settings


def load_dataset(settings):
    """The dataset a run's settings name (folders with their image size, channels and kind)."""
    return datasets.load(settings["dataset"], data_dir=settings.get("data_dir"),
                         image_size=settings.get("image_size"), channels=settings.get("channels", 3),
                         kind=settings.get("kind", "resize"), seed=settings.get("seed", 0))


def command_evaluate(args):
    model = load(args.model)
    record = model.metadata.get("preprocessing") or {}
    options = {}
    if args.dataset == "folder" and kind_of(record) is not None:   # read the folder as the model was trained
        options = dict(image_size=record["size"][0], channels=record.get("channels", 1), kind=kind_of(record))
    dataset = datasets.load(args.dataset, data_dir=args.data_dir, **options)
    if isinstance(dataset.x_test, ImageSet) and kind_of(record) == "resize":
        dataset.x_test = ImageSet(dataset.x_test.pixels, record["mean"], record["std"], dataset.x_test.indices)
    if tuple(model.metadata.get("input_shape", dataset.input_shape)) != dataset.input_shape:
        raise GlassnetError(f"model expects inputs of shape {tuple(model.metadata['input_shape'])}, dataset "
                            f"{dataset.name} has {dataset.input_shape}")
    line = test_line(model, dataset, model.metadata.get("loss", "softmax_cross_entropy"))
    if args.plots:
        print("pictures: " + ", ".join(map(str, test_set_pictures(model, dataset, args.plots))))
    print(line)


def command_inspect(args):
    model = load(args.model)
    x = image_input(model, args.image)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    written = [plots.feature_maps(model, x, folder / "feature_maps.png"), plots.filters(model, folder / "filters.png")]
    probs = model.predict_proba(x)[0]
    names = model.metadata.get("class_names") or [str(i) for i in range(len(probs))]
    best = int(np.argmax(probs))
    print(f"{args.image}\t{names[best] if best < len(names) else best}\t{probs[best]:.4f}")
    print("pictures: " + ", ".join(map(str, written)))


def image_input(model, path):
    """An image file as a batch of one (1, C, H, W), prepared as the model's training data was
    (a note goes to stderr when a grey image was made colour or the reverse)."""
    x, note = image_to_input(path, model.metadata.get("preprocessing", {}))
    if note:
        print(f"note: {note}", file=sys.stderr)
    return x[None]


def command_predict(args):
    model = load(args.model)
    class_names = model.metadata.get("class_names") or []
    if args.top_k < 1:
        raise GlassnetError(f"--top-k must be at least 1. Received: {args.top_k}")
    results = []
    for path in args.images:
        probs = model.predict_proba(image_input(model, path))[0]
        order = np.argsort(-probs, kind="stable")[:args.top_k]
        name = lambda i: class_names[i] if i < len(class_names) else str(i)
        top = [{"class": name(i), "probability": float(probs[i])} for i in order]
        results.append({"path": path, "class": top[0]["class"], "probability": top[0]["probability"], "top_k": top})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            extra = "".join(f"\t{t['class']}:{t['probability']:.4f}" for t in result["top_k"][1:])
            print(f"{result['path']}\t{result['class']}\t{result['probability']:.4f}{extra}")


def command_summary(args):
    model = load(args.model)
    model.summary()


def command_datasets(args):
    if args.action == "export":
        if args.count < len(datasets.SHAPE_CLASSES) or not 8 <= args.size <= 512:
            raise GlassnetError(f"--count must be at least {len(datasets.SHAPE_CLASSES)} and --size in [8, 512]. "
                                f"Received: {args.count}, {args.size}")
        count = datasets.export_shapes(args.folder, args.count, args.size, args.seed, args.format)
        print(f"wrote {count:,} images ({args.size}x{args.size} {args.format}) into {args.folder}, one folder per "
              f"class: {', '.join(datasets.SHAPE_CLASSES)}")
        return
    for name in datasets.LOADERS:
        print(f"{name}\t{datasets.availability(name)}")
    print("folder\tyour images: --dataset folder --data-dir DIR (one sub-folder per class)")


def command_explain(args):
    if args.max_elements < 0 or args.lr <= 0:
        raise GlassnetError(f"--max-elements must be >= 0 and --lr > 0. Received: {args.max_elements}, {args.lr}")
    if args.model or args.image:
        if not (args.model and args.image) or args.net:
            raise GlassnetError("explain: --model and --image go together (and without --net)")
        model = load(args.model)
        x = image_input(model, args.image)
        label = args.label if args.label is not None else int(model.predict(x).argmax(axis=1)[0])
        print(explain_network(model, x, label, args.lr, args.max_elements, model.metadata.get("loss"),
                              f"{args.model} on {args.image}, target class {label}"))
    elif args.net:
        if not args.input:
            raise GlassnetError("explain: --net needs --input, the shape of one sample (e.g. 1x6x6)")
        try:
            shape = tuple(int(n) for n in args.input.lower().split("x"))
        except ValueError:
            raise GlassnetError(f"--input must look like 1x6x6 or 4. Received: {args.input!r}") from None
        if not shape or min(shape) < 1:
            raise GlassnetError(f"--input must be positive sizes like 1x6x6. Received: {args.input!r}")
        model = parse_net(args.net, shape, args.seed)
        x = np.random.default_rng(args.seed).standard_normal((1,) + shape).round(2)
        label = args.label if args.label is not None else 0
        print(explain_network(model, x, label, args.lr, args.max_elements,
                              title=f"network {args.net!r} on a random input {shape} (seed {args.seed}), "
                                    f"target class {label}"))
    else:
        print(seed_example(args.lr, args.max_elements))


def command_studio(args):
    if not 0 <= args.port <= 65535:
        raise GlassnetError(f"--port must be in [0, 65535]. Received: {args.port}")
    from .studio.server import serve
    serve(args.model, args.host, args.port, open_browser=not args.no_browser)


def command_export(args):
    from ..files.onnx_format import export_onnx
    model = load(args.model)
    print(f"wrote {export_onnx(model, args.onnx)} ({len(model.layers)} layers, {model.dtype.name})")


def command_import(args):
    from ..files.onnx_format import import_onnx
    model = import_onnx(args.file)
    if args.dataset:
        dataset = datasets.load(args.dataset)
        if tuple(model.metadata["input_shape"]) != dataset.input_shape:
            raise GlassnetError(f"{args.file} takes inputs of shape {tuple(model.metadata['input_shape'])}, dataset "
                                f"{args.dataset} has {dataset.input_shape}")
        model.metadata.update(preprocessing=dataset.preprocessing, class_names=dataset.class_names,
                              dataset=dataset.name)
    path = save(model, args.out)
    print(f"imported {args.file}: {' > '.join(type(layer).__name__ for layer in model.layers)}; saved to {path}")


def command_bench(args):
    from .benchmark import main as benchmark_main
    benchmark_main(args)


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "predict": command_predict,
            "summary": command_summary, "datasets": command_datasets,
            "explain": command_explain, "inspect": command_inspect, "bench": command_bench,
            "studio": command_studio, "export": command_export, "import": command_import, "sweep": command_sweep}


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and (args.dataset is None) == (args.resume is None):
        parser.error("train: give --dataset (a new run) or --resume CHECKPOINT (carry on a run), not both")
    try:
        COMMANDS[args.command](args)
    except GlassnetError as error:
        print(f"glassnet: error: {error}", file=sys.stderr)
        return 1
    except (OSError, MemoryError) as error:
        print(f"glassnet: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("glassnet: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
