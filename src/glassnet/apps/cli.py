"""The ``glassnet`` command: train, evaluate, predict, summary, datasets.

Exit status: 0 on success, 2 on usage errors (argparse), 1 with a one-line message on
any user error (missing file, not an image, damaged model file, ...).
"""
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..backend import resolve_device
from ..data import datasets
from ..data.augment import Augment
from ..data.imageset import ImageSet
from ..data.preprocessing import image_to_input, kind_of
from ..atomic import writable_file, writable_folder
from ..errors import GlassnetError, TrainingDivergedError
from ..files.serialization import load, load_checkpoint, save
from ..models import presets
from ..nn.layers import Conv2D
from ..see import plots
from ..see.attribution import attribute
from ..see.explain import explain_network, parse_net, seed_example
from ..see.why_pictures import attribution_overlay, visualized_filters
from ..training.distributed import world
from ..training.loop import accuracy, resolve_loss
from .recipe import describe as describe_toolkit
from .recipe import fit_arguments, toolkit_settings
from .parser import OPTIMIZERS, SCHEDULES, WHY_METHODS, build_parser, parse_arguments  # noqa: F401 (build_parser: the docs test)


def command_sweep(args):
    unknown = [arch for arch in args.arch if arch not in presets.ARCHITECTURES]
    bad_optimizers = [name for name in args.optimizer if name not in OPTIMIZERS]
    bad_schedules = [name for name in args.schedule if name not in SCHEDULES + ["none"]]
    if any(w >= args.epochs for w in args.warmup_epochs):
        raise GlassnetError(f"sweep: --warmup-epochs must be fewer than the {args.epochs} epochs. "
                            f"Received: {args.warmup_epochs}")
    if bad_schedules or any(not 0 <= s < 1 for s in args.label_smoothing):
        raise GlassnetError(f"sweep: --schedule takes none, {', '.join(SCHEDULES)} (received {args.schedule}); "
                            f"--label-smoothing numbers in [0, 1) (received {args.label_smoothing})")
    if unknown or bad_optimizers:
        raise GlassnetError(f"sweep: unknown architecture(s) {unknown} or optimizer(s) {bad_optimizers}; "
                            f"architectures: {', '.join(presets.ARCHITECTURES)}; optimizers: {', '.join(OPTIMIZERS)}")
    writable_folder(args.out)
    from .sweep import run_sweep
    run_sweep(args.dataset, args.arch, args.lr, args.batch_size, args.optimizer, args.epochs, args.out,
              scheduler=args.scheduler, parallel=args.parallel, address=args.address,
              schedules=[None if s == "none" else s for s in args.schedule], weight_decays=args.weight_decay,
              smoothings=args.label_smoothing, warmups=args.warmup_epochs, clip_norms=args.clip_norm)


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
    # every destination is checked (and its folder made) before any data is read
    writable_file(args.out)
    if args.checkpoint:
        writable_file(args.checkpoint, example="run.ckpt")
    if args.plots:
        writable_folder(args.plots)
    group = world() if args.distributed else None
    if args.resume:
        model, dataset, settings, finished = _resumed_run(args.resume)
        checkpoint = args.resume
        if finished:
            print(f"{args.resume} holds a finished run: all {settings['epochs']} epochs are done, nothing left to "
                  f"train (to train longer, start a new run with more --epochs)")
            print(f"model saved to {save_or_rescue(model, args.out)}")
            print(test_line(model, dataset, settings["loss"]))
            return
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
        settings.update(toolkit_settings(args, settings["epochs"]))
        if settings.get("augment"):
            Augment.parse(settings["augment"])          # a bad spelling fails now, before any decoding
        dataset = load_dataset(settings)
        model = presets.build_for_dataset(dataset, settings)
        checkpoint = args.checkpoint
    xp, device = resolve_device(args.device)
    model.to(xp, device)
    root = group is None or group.is_root
    if not root:
        args.quiet, args.plots = True, None           # only rank 0 prints and writes
    log = (lambda line: None) if args.quiet else print
    for note in dataset.notes if root else ():
        print(f"note: {note}", file=sys.stderr)
    augment = settings.get("augment")
    threads = group.share_cores() if group is not None else None      # before the header that reports it
    log(f"training {settings['arch']} on {dataset.description}: {settings['epochs']} epochs, batch "
        f"{settings['batch_size']}, {settings['optimizer']} lr {settings['lr']}, {settings['dtype']}"
        + (f", on {args.device}" if args.device != "cpu" else "")
        + (f", augment {Augment.parse(augment).describe()}" if augment else "") + describe_toolkit(settings)
        + (f", {_plural(group.size, 'process', 'processes')} x {_plural(threads, 'thread')}"
           if group is not None else ""))
    tools = fit_arguments(model, settings, len(dataset.y_train))
    started = time.perf_counter()
    try:
        test_as_validation = args.plots and not tools["validation_split"]
        history = model.fit(dataset.x_train, dataset.y_train, epochs=settings["epochs"],
                            batch_size=settings["batch_size"], **tools,
                            seed=settings["seed"], verbose=not args.quiet, log=log, checkpoint=checkpoint,
                            validation_data=(dataset.x_test, dataset.y_test) if test_as_validation else None,
                            checkpoint_every=settings["checkpoint_every"], resume=bool(args.resume),
                            augment=settings.get("augment"), distributed=args.distributed,
                            divergence_check=not args.no_divergence_check)
    except TrainingDivergedError as error:
        raise TrainingDivergedError(f"{error} (--lr); the model was not saved") from None
    seconds = time.perf_counter() - started
    if not root:
        return
    line = test_line(model, dataset, settings["loss"])
    path = save_or_rescue(model, args.out)
    print(f"trained in {seconds:.1f} s; model saved to {path}")
    for stop in tools["callbacks"]:
        if stop.best_epoch is not None:
            print(f"early stopping: the best validation loss {stop.best:.4f} came at epoch {stop.best_epoch}; "
                  + (f"stopped after epoch {stop.stopped_epoch}" if stop.stopped_epoch else "all epochs ran")
                  + "; the model holds that epoch's weights")
    if args.plots:
        written = [plots.training_curves(history, Path(args.plots) / "training_curves.png"),
                   plots.gradient_norms(history, Path(args.plots) / "gradient_norms.png")]
        written += test_set_pictures(model, dataset, args.plots)
        print("pictures: " + ", ".join(map(str, written)))
    print(line)


def _plural(count, word, plural=None):
    return f"{count} {word if count == 1 else plural or word + 's'}"


def save_or_rescue(model, path):
    """``save(model, path)``; if that fails after all (the disk filled, the folder went away), the model is
    saved as ``rescued-<name>`` in the working folder or the temporary folder, and the error names it."""
    try:
        return save(model, path)
    except OSError as error:
        reason = error.strerror or str(error)
        for folder in (Path.cwd(), Path(tempfile.gettempdir())):
            rescue = folder / f"rescued-{Path(path).name}"
            try:
                save(model, rescue)
            except OSError:
                continue
            raise GlassnetError(f"could not save the model to {path} ({reason}); the trained model was saved "
                                f"to {rescue} instead") from None
        raise GlassnetError(f"could not save the model to {path} ({reason}), nor a rescue copy in the working "
                            "or temporary folder") from None


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
    """The model, dataset and settings of the run that wrote ``checkpoint_path``, and whether it finished."""
    saved = load_checkpoint(checkpoint_path)
    settings = saved.model.metadata.get("training")
    keys = ("dataset", "data_dir", "arch", "epochs", "batch_size", "lr", "optimizer", "loss", "seed", "dtype",
            "checkpoint_every")
    if not isinstance(settings, dict) or any(key not in settings for key in keys):
        raise GlassnetError(f"{saved.path}: this checkpoint was not written by 'glassnet train' "
                            "(no training settings); resume it from Python with fit(..., resume=True)")
    return saved.model, load_dataset(settings), settings, saved.progress.get("epoch", 0) > settings["epochs"]


def load_dataset(settings):
    """The dataset a run's settings name (folders with their image size, channels and kind)."""
    return datasets.load(settings["dataset"], data_dir=settings.get("data_dir"),
                         image_size=settings.get("image_size"), channels=settings.get("channels", 3),
                         kind=settings.get("kind", "resize"), seed=settings.get("seed", 0))


def command_evaluate(args):
    if args.plots:
        writable_folder(args.plots)
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
    folder = writable_folder(args.out)
    model = load(args.model)
    x = image_input(model, args.image)
    written = [plots.feature_maps(model, x, folder / "feature_maps.png"), plots.filters(model, folder / "filters.png")]
    if args.filters is not None:
        written.append(visualized_filters(model, args.filters, folder / "visualized_filters.png",
                                          images=_training_images(model), value_range=_value_range(model)))
    probs = model.predict_proba(x)[0]
    names = model.metadata.get("class_names") or [str(i) for i in range(len(probs))]
    best = int(np.argmax(probs))
    print(f"{args.image}\t{names[best] if best < len(names) else best}\t{probs[best]:.4f}")
    print("pictures: " + ", ".join(map(str, written)))


def _training_images(model):
    """The test images of the dataset the model was trained on, when it is a built-in one (else None)."""
    name = model.metadata.get("dataset")
    if name not in datasets.LOADERS:
        return None
    try:
        return datasets.load(name).x_test
    except GlassnetError:
        return None


def _value_range(model):
    """The range of the model's training inputs, from its dataset (None when unknown)."""
    images = _training_images(model)
    return None if images is None else (float(np.min(images)), float(np.max(images)))


def image_input(model, path):
    """An image file as a batch of one (1, C, H, W), prepared as the model's training data was
    (a note goes to stderr when a grey image was made colour or the reverse)."""
    x, note = image_to_input(path, model.metadata.get("preprocessing", {}))
    if note:
        print(f"note: {note}", file=sys.stderr)
    return x[None]


def command_predict(args):
    """Answers every readable image; each unreadable one gets its own error line (exit 1 if any failed)."""
    model = load(args.model)
    class_names = model.metadata.get("class_names") or []
    name = lambda i: class_names[i] if i < len(class_names) else str(i)
    results = []
    for path in args.images:
        try:
            probs = model.predict_proba(image_input(model, path))[0]
        except (GlassnetError, OSError) as error:
            message = error_text(error)
            message = message if message.startswith(path) else f"{path}: {message}"
            results.append({"path": path, "error": message})
            print(f"glassnet: error: {message}", file=sys.stderr)
            continue
        order = np.argsort(-probs, kind="stable")[:args.top_k]
        top = [{"class": name(i), "probability": float(probs[i])} for i in order]
        results.append({"path": path, "class": top[0]["class"], "probability": top[0]["probability"], "top_k": top})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            if "error" not in result:
                extra = "".join(f"\t{t['class']}:{t['probability']:.4f}" for t in result["top_k"][1:])
                print(f"{result['path']}\t{result['class']}\t{result['probability']:.4f}{extra}")
    return 1 if any("error" in result for result in results) else 0


def command_summary(args):
    model = load(args.model)
    model.summary()


def command_datasets(args):
    if args.action == "export":
        writable_folder(args.folder)
        count = datasets.export_shapes(args.folder, args.count, args.size, args.seed, args.format)
        print(f"wrote {count:,} images ({args.size}x{args.size} {args.format}) into {args.folder}, one folder per "
              f"class: {', '.join(datasets.SHAPE_CLASSES)}")
        return
    for name in datasets.LOADERS:
        print(f"{name}\t{datasets.availability(name)}")
    print("folder\tyour images: --dataset folder --data-dir DIR (one sub-folder per class)")


def command_explain(args):
    if args.why or args.out:
        return _explain_why(args)
    if args.model or args.image:
        if not (args.model and args.image) or args.net:
            raise GlassnetError("explain: --model and --image go together (and without --net)")
        model = load(args.model)
        x = image_input(model, args.image)
        label = args.label if args.label is not None else int(model.predict(x).argmax(axis=1)[0])
        print(explain_network(model, x, label, args.lr, args.max_elements, model.metadata.get("loss"),
                              f"{args.model} on {args.image}, target class {label}", clip_norm=args.clip_norm))
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
                                    f"target class {label}", clip_norm=args.clip_norm))
    else:
        print(seed_example(args.lr, args.max_elements))


def _explain_why(args):
    """``glassnet explain --model M --image F --why METHOD --out DIR``: the attribution as PNG and .npy."""
    if not (args.model and args.image and args.why and args.out) or args.net:
        raise GlassnetError("explain: --why needs --model, --image and --out (and no --net)")
    folder = writable_folder(args.out)
    model = load(args.model)
    x = image_input(model, args.image)
    label = args.label if args.label is not None else int(model.predict(x).argmax(axis=1)[0])
    method = WHY_METHODS[args.why]
    if args.layer is not None and method != "gradcam":
        raise GlassnetError("explain: --layer goes with --why gradcam")
    options = {"layer": args.layer} if args.layer is not None else {}
    values = attribute(model, x, label, method=method, **options)[0]
    names = model.metadata.get("class_names") or []
    name = names[label] if label < len(names) else str(label)
    stem = folder / f"why-{args.why}"
    np.save(f"{stem}.npy", values)
    picture = attribution_overlay(x[0], values, f"{stem}.png", f"{args.why}: why {Path(args.image).name} "
                                                                 f"says {name} (output {label})")
    print(f"{args.image}: class {name} (output {label}); {method} attribution {tuple(values.shape)}, "
          f"sum {values.sum():.6g}, largest {np.abs(values).max():.6g}")
    print(f"written: {picture}, {stem}.npy")


def command_studio(args):
    from .studio.server import serve
    serve(args.model, args.host, args.port, open_browser=not args.no_browser)


def command_export(args):
    from ..files.onnx_format import export_onnx
    writable_file(args.onnx, example="model.onnx")
    model = load(args.model)
    print(f"wrote {export_onnx(model, args.onnx)} ({len(model.layers)} layers, {model.dtype.name})")


def command_import(args):
    from ..files.onnx_format import import_onnx
    writable_file(args.out)
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


def error_text(error):
    """A one-line message: the file a system error names, then why (never a temporary file's name)."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def main(argv=None):
    args = parse_arguments(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except (GlassnetError, OSError, MemoryError) as error:
        print(f"glassnet: error: {error_text(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("glassnet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
