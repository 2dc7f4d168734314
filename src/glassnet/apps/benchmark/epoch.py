"""``glassnet bench --epoch DATASET``: one whole training epoch in glassnet and in a plain PyTorch loop.

Both train the same net (``--arch``, default ``simple``; float32, batch 100, Adam lr 1e-3) from the
same initial weights (a graph such as ``resnet_mini`` becomes a torch.fx GraphModule),
visit the training images in the same order (the permutation ``fit`` draws from its seed) and
then classify the test set. PyTorch gets the whole data set as tensors up front and a plain loop
over index slices (no DataLoader): its fastest honest form. Reported: wall time of the epoch for
each, the ratio, and both test accuracies (they should agree within noise: the same arithmetic).
"""
import time

import numpy as np

from ...data import datasets
from ...models import presets
from ...files.torch_convert import to_torch

ARCH, BATCH, LR, SEED = "simple", 100, 1e-3, 0


def glassnet_epoch(data, dtype, arch=ARCH):
    model = presets.build(arch, data.input_shape, len(data.class_names), seed=SEED, dtype=dtype)
    x_train = np.asarray(data.x_train, dtype=dtype)
    started = time.perf_counter()
    model.fit(x_train, data.y_train, epochs=1, batch_size=BATCH, optimizer="adam", lr=LR, seed=SEED, verbose=False)
    seconds = time.perf_counter() - started
    accuracy = float(np.mean(model.predict(np.asarray(data.x_test, dtype=dtype)).argmax(axis=1) == data.y_test))
    return seconds, accuracy


def torch_epoch(data, dtype, torch, arch=ARCH):
    glass = presets.build(arch, data.input_shape, len(data.class_names), seed=SEED, dtype=dtype)
    model = to_torch(glass)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.from_numpy(np.ascontiguousarray(data.x_train, dtype=dtype))
    y = torch.from_numpy(np.asarray(data.y_train, dtype=np.int64))
    order = torch.from_numpy(np.random.default_rng(SEED).permutation(len(data.y_train)))   # fit's order
    started = time.perf_counter()
    model.train()
    for start in range(0, len(order), BATCH):
        batch = order[start:start + BATCH]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x[batch]), y[batch]).backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.ascontiguousarray(data.x_test, dtype=dtype)))
    accuracy = float((logits.argmax(dim=1).numpy() == data.y_test).mean())
    return seconds, accuracy


def epoch_report(name, dtype, torch, arch=ARCH):
    """{"dataset", "images", "glassnet": {"seconds", "accuracy"}, "pytorch": {...} or None, "ratio"}."""
    data = datasets.load(name)
    report = {"dataset": name, "images": int(len(data.y_train)), "arch": arch, "batch_size": BATCH,
              "optimizer": f"adam lr {LR}"}
    seconds, accuracy = glassnet_epoch(data, dtype, arch)
    report["glassnet"] = {"seconds": seconds, "accuracy": accuracy}
    report["pytorch"] = None
    if torch is not None:
        seconds, accuracy = torch_epoch(data, dtype, torch, arch)
        report["pytorch"] = {"seconds": seconds, "accuracy": accuracy}
        report["ratio"] = report["pytorch"]["seconds"] / report["glassnet"]["seconds"]
    return report


def epoch_markdown(report):
    g, p = report["glassnet"], report["pytorch"]
    lines = [f"## One epoch of {report['dataset']} ({report['images']:,} images, {report['arch']}, batch "
             f"{report['batch_size']}, {report['optimizer']})", "",
             "| | wall time s | images/s | test accuracy |", "|---|---|---|---|",
             f"| glassnet | {g['seconds']:.2f} | {report['images'] / g['seconds']:,.0f} | {g['accuracy']:.4f} |"]
    if p is not None:
        lines.append(f"| PyTorch (plain loop) | {p['seconds']:.2f} | {report['images'] / p['seconds']:,.0f} | "
                     f"{p['accuracy']:.4f} |")
        lines += ["", f"glassnet is {report['ratio']:.2f}x PyTorch's speed over the epoch."]
    return "\n".join(lines)
