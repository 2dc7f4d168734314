"""The ``glassnet`` command: train, evaluate, predict, summary, datasets.

Exit status: 0 on success, 2 on usage errors (argparse), 1 with a one-line message on
any user error (missing file, not an image, damaged model file, ...).
"""
import argparse
import json
import sys
import time

import numpy as np

from . import datasets, presets
from .errors import GlassnetError
from .benchmark.run import build_parser as benchmark_parser
from .images import load_image
from .checkpoint import load_checkpoint
from .serialization import load, save
from .training import accuracy, resolve_loss


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
    train.add_argument("--seed", type=int, help="weight and shuffling seed (default: the dataset's, else 0)")
    train.add_argument("--data-dir", help="folder holding the IDX files (fashion_mnist, mnist) or the "
                                            "class sub-folders (folder)")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument("--out", required=True, help="where to save the model file")
    train.add_argument("--checkpoint", help="write a checkpoint here after every epoch (previous kept as .prev)")
    train.add_argument("--checkpoint-every", type=int, help="also checkpoint after every N batches")
    train.add_argument("--resume", metavar="CHECKPOINT",
                       help="continue the run that wrote CHECKPOINT, with its dataset and settings")

    evaluate = commands.add_parser("evaluate", help="evaluate a saved model on a dataset's test split")
    evaluate.add_argument("model")
    evaluate.add_argument("--dataset", required=True, choices=DATASET_CHOICES)
    evaluate.add_argument("--data-dir")

    predict = commands.add_parser("predict", help="classify image files with a saved model")
    predict.add_argument("model")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--top-k", type=int, default=1)
    predict.add_argument("--json", action="store_true")

    summary = commands.add_parser("summary", help="print a saved model's layers and parameter counts")
    summary.add_argument("model")

    commands.add_parser("datasets", help="list the datasets and whether they are available here")

    bench = commands.add_parser("bench", help="time glassnet against PyTorch on the same nets (benchmarks/)")
    benchmark_parser(bench)
    return parser


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
        dataset = datasets.load(args.dataset, data_dir=args.data_dir)
        settings = dict(presets.DEFAULTS[args.dataset])
        for key in ("arch", "epochs", "batch_size", "lr", "optimizer"):
            if getattr(args, key) is not None:
                settings[key] = getattr(args, key)
        settings.update(dataset=args.dataset, data_dir=args.data_dir, dtype=args.dtype,
                        seed=args.seed if args.seed is not None else settings.get("seed", 0),
                        checkpoint_every=args.checkpoint_every)
        outputs = dataset.y_train.shape[1] if dataset.y_train.ndim == 2 else len(dataset.class_names)
        model = presets.build(settings["arch"], dataset.input_shape, outputs, seed=settings["seed"],
                              dtype=settings["dtype"])
        model.metadata.update({"dataset": dataset.name, "task": dataset.task, "class_names": dataset.class_names,
                               "preprocessing": dataset.preprocessing, "loss": settings["loss"],
                               "training": settings})
        checkpoint = args.checkpoint
    log = (lambda line: None) if args.quiet else print
    log(f"training {settings['arch']} on {dataset.description}: {settings['epochs']} epochs, batch "
        f"{settings['batch_size']}, {settings['optimizer']} lr {settings['lr']}, {settings['dtype']}")
    started = time.perf_counter()
    model.fit(dataset.x_train, dataset.y_train, epochs=settings["epochs"], batch_size=settings["batch_size"],
              loss=settings["loss"], optimizer=settings["optimizer"], lr=settings["lr"], seed=settings["seed"],
              verbose=not args.quiet, log=log, checkpoint=checkpoint, checkpoint_every=settings["checkpoint_every"],
              resume=bool(args.resume))
    seconds = time.perf_counter() - started
    line = test_line(model, dataset, settings["loss"])
    path = save(model, args.out)
    print(f"trained in {seconds:.1f} s; model saved to {path}")
    print(line)


def _resumed_run(checkpoint_path):
    """The model, dataset and settings of the run that wrote ``checkpoint_path``."""
    saved = load_checkpoint(checkpoint_path)
    settings = saved.model.metadata.get("training")
    keys = ("dataset", "data_dir", "arch", "epochs", "batch_size", "lr", "optimizer", "loss", "seed", "dtype",
            "checkpoint_every")
    if not isinstance(settings, dict) or any(key not in settings for key in keys):
        raise GlassnetError(f"{saved.path}: this checkpoint was not written by 'glassnet train' "
                            "(no training settings); resume it from Python with fit(..., resume=True)")
    dataset = datasets.load(settings["dataset"], data_dir=settings["data_dir"])
    return saved.model, dataset, settings


def command_evaluate(args):
    model = load(args.model)
    dataset = datasets.load(args.dataset, data_dir=args.data_dir)
    if tuple(model.metadata.get("input_shape", dataset.input_shape)) != dataset.input_shape:
        raise GlassnetError(f"model expects inputs of shape {tuple(model.metadata['input_shape'])}, dataset "
                            f"{dataset.name} has {dataset.input_shape}")
    print(test_line(model, dataset, model.metadata.get("loss", "softmax_cross_entropy")))


def command_predict(args):
    model = load(args.model)
    preprocessing = model.metadata.get("preprocessing", {})
    class_names = model.metadata.get("class_names") or []
    if args.top_k < 1:
        raise GlassnetError(f"--top-k must be at least 1. Received: {args.top_k}")
    results = []
    for path in args.images:
        probs = model.predict_proba(load_image(path, preprocessing)[None])[0]
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
    for name in datasets.LOADERS:
        print(f"{name}\t{datasets.availability(name)}")
    print("folder\tyour images: --dataset folder --data-dir DIR (one sub-folder per class)")


def command_bench(args):
    from .benchmark import main as benchmark_main
    benchmark_main(args)


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "predict": command_predict,
            "summary": command_summary, "datasets": command_datasets,
            "bench": command_bench}


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
