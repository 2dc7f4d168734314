"""The ``glassnet`` command's arguments: every option with its default in its help, every number
checked as it is parsed (so a bad one is refused before the run prints anything), and errors in
one line naming the option and what it accepts, instead of argparse's whole usage block."""
import argparse

from ..data import datasets
from ..models import presets
from ..backend import DEVICES
from ..see.explain import NET_HELP
from .benchmark.run import build_parser as benchmark_parser

DATASET_CHOICES = sorted(datasets.LOADERS) + ["folder"]
OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad"]
SCHEDULES = ["step", "cosine", "onecycle", "plateau"]
WHY_METHODS = {"gradient": "gradient", "inputxgradient": "input_x_gradient", "ig": "integrated_gradients",
               "smoothgrad": "smoothgrad", "occlusion": "occlusion", "gradcam": "gradcam"}


class Parser(argparse.ArgumentParser):
    """argparse, with errors in one line: ``glassnet train: error: argument --epochs: ...``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class DefaultsInHelp(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help unless the help already says its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = any(action.default is nothing for nothing in (None, argparse.SUPPRESS, False))
        shown = not unset and action.nargs != 0
        if shown and "default" not in text and action.option_strings:
            value = ",".join(map(str, action.default)) if isinstance(action.default, list) else action.default
            text = f"{text} (default: {value})".strip()
        return text


def number(kind, low, inclusive=True):
    """An argparse type: a ``kind`` (int or float) >= ``low`` (> ``low`` when not ``inclusive``)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}. "
                                             f"Received: {text!r}") from None
        if value < low or (value == low and not inclusive) or value != value:
            relation = ">=" if inclusive else ">"
            raise argparse.ArgumentTypeError(f"must be {relation} {low}. Received: {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


positive_int = number(int, 1)
non_negative_int = number(int, 0)
positive_float = number(float, 0, inclusive=False)
non_negative_float = number(float, 0)


def fraction(text):
    """An argparse type: a number in [0, 1) (label smoothing) ..."""
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be below 1. Received: {text}")
    return value


def open_fraction(text):
    """... or in (0, 1) (a validation split)."""
    value = fraction(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0. Received: {text}")
    return value


def word_list(text):
    words = [word.strip() for word in text.split(",") if word.strip()]
    if not words:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list. Received: {text!r}")
    return words


def number_list(kind, minimum=None):
    element = (number(kind, 1) if kind is int else positive_float) if minimum is None else number(kind, minimum)

    def parse(text):
        return [element(word) for word in word_list(text)]
    parse.__name__ = f"{kind.__name__} list"
    return parse


def add_toolkit_options(train):
    """The training toolkit's options of ``glassnet train`` (see glassnet.apps.recipe)."""
    train.add_argument("--weight-decay", type=non_negative_float,
                       help="weight decay on the weights of Conv2D and Dense layers (not biases or BatchNorm): "
                            "decoupled for adamw, added to the gradient otherwise (default: 0; 0.01 for adamw)")
    train.add_argument("--schedule", choices=SCHEDULES,
                       help="learning-rate schedule: step (x0.1 every third of the epochs), cosine (down to 0 "
                            "over the epochs), onecycle (up to --lr then down, per batch), plateau (x0.5 after 2 "
                            "epochs without a better validation loss) (default: a constant rate)")
    train.add_argument("--warmup-epochs", type=non_negative_int,
                       help="raise the rate linearly from a tenth over the first N epochs (default: none)")
    train.add_argument("--clip-norm", type=positive_float,
                       help="scale each step's gradients to this total L2 norm at most (default: no clipping)")
    train.add_argument("--label-smoothing", type=fraction,
                       help="mix each target with the uniform distribution by this much (default: 0)")
    train.add_argument("--early-stopping", type=non_negative_int, metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a better validation loss and keep the best "
                            "epoch's weights (default: train every epoch)")
    train.add_argument("--validation-split", type=open_fraction,
                       help="hold out this fraction of the training set (stratified, seeded) for the "
                            "validation loss (default: none; 0.1 with --early-stopping or --schedule plateau)")


def per_dataset(key):
    """'per data set: digits 24, mnist5k 10, ...': a train option's default, which the data set chooses."""
    pairs = (f"{name} {settings[key]}" for name, settings in presets.DEFAULTS.items())
    return "default per data set: " + ", ".join(pairs)


def build_parser():
    from .. import __version__
    parser = Parser(prog="glassnet", description="Train, save and use NumPy CNNs.", formatter_class=DefaultsInHelp)
    parser.add_argument("--version", action="version", version=f"glassnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name, **options):
        return commands.add_parser(name, formatter_class=DefaultsInHelp, **options)

    train = command("train", help="train a model on a dataset and save it")
    train.add_argument("--dataset", choices=DATASET_CHOICES,
                       help="the data set of a new run (no default: required unless --resume)")
    train.add_argument("--arch", choices=sorted(presets.ARCHITECTURES), help=per_dataset("arch"))
    train.add_argument("--epochs", type=positive_int, help=per_dataset("epochs"))
    train.add_argument("--batch-size", type=positive_int, help=per_dataset("batch_size"))
    train.add_argument("--lr", type=positive_float, help="learning rate; " + per_dataset("lr"))
    train.add_argument("--optimizer", choices=OPTIMIZERS, help=per_dataset("optimizer"))
    add_toolkit_options(train)
    train.add_argument("--dtype", choices=["float32", "float64"], default="float64", help="precision")
    train.add_argument("--distributed", action="store_true",
                       help="data-parallel over the processes of mpiexec -n N (pip install 'glassnet[mpi]'); "
                            "rank 0 prints and writes; each process gets its share of the cores as BLAS threads")
    train.add_argument("--device", choices=sorted(DEVICES), default="cpu",
                       help="where the arithmetic runs: " + "; ".join(f"{k}: {v}" for k, v in DEVICES.items()))
    train.add_argument("--seed", type=int, help="weight and shuffling seed (default: the dataset's, else 0)")
    train.add_argument("--data-dir", help="folder holding the IDX files (fashion_mnist, mnist) or the "
                                          "class sub-folders (folder) (default: $GLASSNET_DATA_DIR, else "
                                          "the usual places)")
    train.add_argument("--image-size", type=positive_int, help="folder/shapes: images resized to N x N "
                                                               "(default 32; 28 for --kind digit)")
    train.add_argument("--channels", type=int, choices=[1, 3], default=3, help="folder: 3 colour, 1 grey")
    train.add_argument("--kind", choices=["resize", "digit"], default="resize",
                       help="folder: 'resize' any picture or 'digit' (the MNIST convention)")
    train.add_argument("--augment", help="change training batches at random: any of shift,flip,rotate,scale "
                                         "(default: shift,flip,rotate for shapes, none otherwise)")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument("--out", required=True, help="where to save the model file (its folder is made if missing)")
    train.add_argument("--plots", metavar="DIR", help="write training curves, gradient norms, filters, confusion "
                                                     "matrix and misclassified test images here (PNG); the "
                                                     "test split is then evaluated after every epoch "
                                                     "(default: no pictures)")
    train.add_argument("--checkpoint", help="write a checkpoint here after every epoch (previous kept as .prev) "
                                            "(default: none)")
    train.add_argument("--checkpoint-every", type=positive_int,
                       help="also checkpoint after every N batches (default: at epoch ends only)")
    train.add_argument("--resume", metavar="CHECKPOINT",
                       help="continue the run that wrote CHECKPOINT, with its dataset and settings "
                            "(default: a new run)")
    train.add_argument("--no-divergence-check", action="store_true",
                       help="keep training when the loss grows past 100 times its first batch's "
                            "(default: stop, and save nothing)")

    evaluate = command("evaluate", help="evaluate a saved model on a dataset's test split")
    evaluate.add_argument("model")
    evaluate.add_argument("--dataset", required=True, choices=DATASET_CHOICES)
    evaluate.add_argument("--data-dir", help="as for train (default: the usual places)")
    evaluate.add_argument("--plots", metavar="DIR", help="write the confusion matrix, misclassified test images "
                                                        "and first-layer filters here (PNG) (default: none)")

    inspect = command("inspect", help="pictures of a model looking at one image: feature maps, filters")
    inspect.add_argument("model")
    inspect.add_argument("image")
    inspect.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files (made if missing)")
    inspect.add_argument("--filters", type=non_negative_int, metavar="LAYER",
                         help="also draw what LAYER's channels look for: an input made up to excite each, and the "
                              "dataset image that does (visualized_filters.png) (default: no)")

    predict = command("predict", help="classify image files with a saved model")
    predict.add_argument("model")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--top-k", type=positive_int, default=1, help="classes shown per image")
    predict.add_argument("--json", action="store_true", help="print JSON instead of tab-separated lines")

    summary = command("summary", help="print a saved model's layers and parameter counts")
    summary.add_argument("model")

    datasets_command = command("datasets", help="list the datasets and whether they are available here; "
                                                "export one as an image folder")
    actions = datasets_command.add_subparsers(dest="action", parser_class=Parser)
    export = actions.add_parser("export", help="write a dataset as image files, one sub-folder per class",
                                formatter_class=DefaultsInHelp)
    export.add_argument("name", choices=["shapes"])
    export.add_argument("folder", help="a new (or empty) folder")
    export.add_argument("--count", type=number(int, len(datasets.SHAPE_CLASSES)), default=3000,
                        help="images in all")
    export.add_argument("--size", type=positive_int, default=32, help="side in pixels, 8 to 512")
    export.add_argument("--seed", type=int, default=0, help="what the shapes look like")
    export.add_argument("--format", choices=["png", "jpeg"], default="png", help="image file format")

    explain = command("explain", help="print every array of one forward and backward pass",
                      description="With no arguments: seed 000's worked example, done right. "
                                  "With --model and --image: a saved model on an image file. "
                                  "With --net and --input: a small network of your own.")
    seed_example = " (default: seed 000's example)"
    explain.add_argument("--model", help="a saved model file (with --image)" + seed_example)
    explain.add_argument("--image", help="an image file for --model" + seed_example)
    explain.add_argument("--net", help=NET_HELP + seed_example)
    explain.add_argument("--input", help="input shape for --net, e.g. 1x6x6 or 4" + seed_example)
    explain.add_argument("--label", type=non_negative_int,
                         help="target class (default: the predicted class; 0 for --net)")
    explain.add_argument("--lr", type=positive_float, default=0.1, help="learning rate of the SGD step shown")
    explain.add_argument("--clip-norm", type=positive_float,
                         help="with --model or --net: clip the gradients to this total norm before the step, "
                              "and show the norm before and after (default: no clipping)")
    explain.add_argument("--why", choices=sorted(WHY_METHODS),
                         help="with --model and --image: which pixels made the model say --label (default: the "
                              "predicted class): an attribution map over the image as PNG, and its numbers as "
                              ".npy, in --out (default: print the pass instead)")
    explain.add_argument("--layer", type=non_negative_int,
                         help="the layer (index in summary) of --why gradcam (default: the last with image-shaped "
                              "output larger than 1x1)")
    explain.add_argument("--out", metavar="DIR", help="the folder for --why's files, made if missing (default: none; "
                                                         "--why needs it)")
    explain.add_argument("--seed", type=int, default=0, help="weights and input of --net")
    explain.add_argument("--max-elements", type=non_negative_int, default=64,
                         help="print arrays up to this size whole, summarise larger ones")

    studio = command("studio", help="a local web page on a model: draw, see every number, train live",
                     description="Serve the glassnet studio on this machine and open it in the "
                                 "browser. Needs the extra: pip install 'glassnet[studio]'.")
    studio.add_argument("model", nargs="?", help="a saved model file (without one, the page offers to train one)")
    studio.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    studio.add_argument("--port", type=number(int, 0), default=8000, help="port (0 picks a free one)")
    studio.add_argument("--no-browser", action="store_true", help="do not open a browser")

    export = command("export", help="write a saved model as an ONNX file")
    export.add_argument("model")
    export.add_argument("--onnx", required=True, metavar="OUT", help="the ONNX file to write")

    import_command = command("import", help="read an ONNX file into a glassnet model file")
    import_command.add_argument("file", help="an ONNX file (a chain of Conv, pools, Flatten/Reshape, Gemm/MatMul, "
                                             "BatchNormalization and activations)")
    import_command.add_argument("--out", required=True, help="the glassnet model file to write")
    import_command.add_argument("--dataset", choices=sorted(datasets.LOADERS),
                                help="take this dataset's preprocessing and class names, so that predict, explain "
                                     "and inspect can read image files with the model (default: none)")

    bench = command("bench", help="time glassnet against PyTorch on the same nets (benchmarks/)")
    benchmark_parser(bench)

    sweep = command("sweep", help="one training run per combination of settings, on Ray Tune",
                    description="Train every combination of --arch, --lr, --batch-size, --optimizer, "
                                "--schedule, --warmup-epochs, --weight-decay, --label-smoothing and --clip-norm "
                                "on Ray Tune, print a table sorted by validation accuracy, write it as "
                                "CSV and JSON and save the best model, all inside --out. Needs "
                                "pip install 'glassnet[sweep]'.")
    sweep.add_argument("--dataset", required=True, choices=sorted(datasets.LOADERS))
    sweep.add_argument("--arch", required=True, type=word_list, help="comma-separated, e.g. lenet,mlp")
    sweep.add_argument("--lr", required=True, type=number_list(float), help="comma-separated, e.g. 0.01,0.001")
    sweep.add_argument("--batch-size", type=number_list(int), default=[32], help="comma-separated")
    sweep.add_argument("--optimizer", type=word_list, default=["adam"],
                       help="comma-separated " + ", ".join(OPTIMIZERS))
    sweep.add_argument("--schedule", type=word_list, default=["none"],
                       help="comma-separated none, " + ", ".join(SCHEDULES) + " (as glassnet train --schedule)")
    sweep.add_argument("--weight-decay", type=number_list(float, minimum=0), default=[None],
                       help="comma-separated weight decays (default: glassnet train's)")
    sweep.add_argument("--label-smoothing", type=number_list(float, minimum=0), default=[0.0],
                       help="comma-separated label smoothings in [0, 1)")
    sweep.add_argument("--warmup-epochs", type=number_list(int, minimum=0), default=[0],
                       help="comma-separated warm-up epochs (fewer than --epochs)")
    sweep.add_argument("--clip-norm", type=number_list(float), default=[None],
                       help="comma-separated gradient norms to clip to (default: no clipping)")
    sweep.add_argument("--epochs", type=positive_int, required=True)
    sweep.add_argument("--scheduler", choices=["asha"], help="stop trials that fall behind early (ASHA) "
                                                             "(default: none)")
    sweep.add_argument("--parallel", type=positive_int, default=2, help="trials at once")
    sweep.add_argument("--address", help="an existing Ray cluster (ray start --head) (default: a local Ray)")
    sweep.add_argument("--out", required=True, help="folder for Ray's files, the results and best.glassnet")
    return parser


def parse_arguments(argv=None):
    """The parsed arguments, after the checks that need more than one option (also in one line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and (args.dataset is None) == (args.resume is None):
        parser.exit(2, "glassnet train: error: give --dataset (a new run) or --resume CHECKPOINT (carry on a "
                       "run), not both\n")
    if args.command == "datasets" and args.action == "export" and not 8 <= args.size <= 512:
        parser.exit(2, "glassnet datasets export: error: argument --size: must be in [8, 512]. "
                       f"Received: {args.size}\n")
    if args.command == "studio" and args.port > 65535:
        parser.exit(2, f"glassnet studio: error: argument --port: must be in [0, 65535]. Received: {args.port}\n")
    return args
