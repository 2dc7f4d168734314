"""Image-folder datasets: ``root/<class>/<image>``, or ``root/train/<class>/...`` + ``root/test/<class>/...``.

Two kinds of preprocessing (``glassnet.preprocessing``): ``resize`` (colour or grey pictures of
anything; the default) and ``digit`` (the MNIST convention). ``resize`` folders are decoded once
into a memory-mapped cache (``cache.py``) and served as ``ImageSet``s normalised with the
training split's per-channel mean and std. Files that cannot be read are skipped and reported
(``Dataset.notes``), never dropped silently; a class left with no image is an error.
"""
from pathlib import Path

import numpy as np

from ...errors import GlassnetError
from ..imageset import ImageSet
from ..preprocessing import decode_resized, image_to_input, resize_record
from .base import Dataset
from .builtin import mnist_preprocessing
from .cache import decoded_folder

KINDS = ("resize", "digit")
SHOWN_SKIPS = 5
STATISTICS_CHUNK = 1024   # images per step when computing the mean and std (bounded memory)


def image_folder(root, size=(32, 32), channels=3, kind="resize", fit="crop", test_fraction=0.2, seed=0,
                 cache=True, preprocessing=None, progress=True):
    """Load a folder of images, one sub-folder per class (names sorted); see the module docstring.

    Parameters
    ----------
    root : folder with class sub-folders, or with ``train/`` and ``test/`` holding them (used as given)
    size : (H, W) of the model's input; channels : 3 (RGB) or 1 (grey)
    kind : "resize" or "digit"; fit : "crop" (keep aspect, centre crop) or "pad" (keep aspect, pad)
    test_fraction, seed : a stratified seeded split (each class split alike) when there is no test/
    cache : decode once into the data cache folder and memory-map it (``resize`` only)
    preprocessing : a ``digit`` record to use instead of the MNIST one (kind "digit")

    Returns
    -------
    Dataset
        x_train / x_test are ``ImageSet``s (kind resize) or float arrays (digit); ``notes`` names
        the files skipped as unreadable.
    """
    root = Path(root)
    if kind not in KINDS:
        raise GlassnetError(f"image_folder: kind must be 'resize' or 'digit'. Received: kind={kind!r}")
    if not root.is_dir():
        raise GlassnetError(f"image folder {root} does not exist or is not a folder")
    size = _size_pair(size)
    class_names, train_files, test_files, skipped = list_folder(root)
    files = train_files + (test_files or [])
    if kind == "digit":
        record = preprocessing or (mnist_preprocessing() if size == (28, 28) else _digit_record(size))
        images, readable, skipped_now = _decode_digits([path for path, _ in files], record)
        decoded_now = True
    else:
        record = resize_record(size, channels, fit)
        settings = {"size": list(size), "channels": record["channels"], "fit": fit}
        decode = lambda path: decode_resized(path, size, record["channels"], fit)[0]  # noqa: E731
        if cache:
            images, readable, skipped_now, decoded_now = decoded_folder([p for p, _ in files], settings, decode,
                                                                        progress=progress)
        else:
            images, readable, skipped_now = _decode_in_memory([p for p, _ in files], decode)
            decoded_now = True
    total_files = len(files) + len(skipped)          # listed files plus entries skipped while listing
    skipped = skipped + [tuple(entry) for entry in skipped_now]
    labels = np.array([files[i][1] for i in readable], dtype=np.int64)
    in_test = np.array([i >= len(train_files) for i in readable], dtype=bool)
    _check_classes(root, class_names, labels, skipped)
    if test_files is None:
        train, test = stratified_split(labels, test_fraction, seed)
    else:
        train, test = np.flatnonzero(~in_test), np.flatnonzero(in_test)
        if len(test) == 0:
            raise GlassnetError(f"image folder {root}: test/ holds no readable image")
    notes = [skip_report(skipped, total_files)] if skipped else []
    source = "cache" if not decoded_now else "decoded"
    if kind == "digit":
        x_train, x_test = images[train], images[test]
    else:
        mean, std = channel_statistics(images, train)
        record.update(mean=mean, std=std)
        x_train, x_test = ImageSet(images, mean, std, train), ImageSet(images, mean, std, test)
    layout = "train/ and test/ as given" if test_files is not None else f"stratified split, seed {seed}"
    description = (f"image folder {root} ({kind} {size[0]}x{size[1]}"
                   f"{'' if kind == 'digit' else ', ' + ('colour' if record['channels'] == 3 else 'grey')}; "
                   f"{len(train):,} train / {len(test):,} test, {layout}; {source})")
    return Dataset(root.name, x_train, labels[train], x_test, labels[test], class_names=class_names,
                   preprocessing=record, description=description, notes=notes)


def _size_pair(size):
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and 4 <= v <= 1024 for v in pair):
        raise GlassnetError(f"image_folder: size must be N or (H, W) with whole numbers in [4, 1024]. "
                            f"Received: size={size!r}")
    return tuple(int(v) for v in pair)


def _digit_record(size):
    record = mnist_preprocessing()
    record.update(size=list(size), box=max(1, round(min(size) * 20 / 28)))
    return record


def list_folder(root):
    """(class names, train files [(path, label)], test files or None, skipped [(path, reason)]).

    Hidden entries (names starting with '.') are ignored; anything else that is not a regular
    file inside a class folder (a sub-folder, a broken link, a link loop) is reported as skipped.
    """
    parts = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if parts == {"train", "test"}:
        class_names, train_files, skipped = _class_files(root / "train", None)
        _, test_files, skipped_test = _class_files(root / "test", class_names)
        return class_names, train_files, test_files, skipped + skipped_test
    class_names, files, skipped = _class_files(root, None)
    return class_names, files, None, skipped


def _class_files(folder, expected_classes):
    class_dirs = sorted((p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir()),
                        key=lambda p: p.name)
    names = [d.name for d in class_dirs]
    skipped = [(str(p), "not a folder of images (a file, a broken link or a link loop)")
               for p in sorted(folder.iterdir()) if not p.name.startswith(".") and not p.is_dir()]
    if expected_classes is not None and names != expected_classes:
        raise GlassnetError(f"image folder {folder}: its class folders {names} differ from train/'s "
                            f"{expected_classes}")
    if len(class_dirs) < 2:
        raise GlassnetError(f"image folder {folder}: expected one sub-folder per class (at least 2), found "
                            f"{len(class_dirs)}" + (f" ({', '.join(names)})" if names else ""))
    files = []
    for label, class_dir in enumerate(class_dirs):
        for path in sorted(class_dir.iterdir(), key=lambda p: p.name):
            if path.name.startswith("."):
                continue
            if path.is_file():
                files.append((path, label))
            else:
                skipped.append((str(path), "not an image file (a folder, a broken link or a link loop)"))
    return names, files, skipped


def _decode_in_memory(files, decode):
    decoded, readable, skipped = [], [], []
    for index, path in enumerate(files):
        try:
            decoded.append(decode(path))
            readable.append(index)
        except GlassnetError as error:
            skipped.append((str(path), str(error)))
    images = np.stack(decoded) if decoded else np.zeros((0, 1, 1, 1), dtype=np.uint8)
    return images, readable, skipped


def _decode_digits(files, record):
    decode = lambda path: image_to_input(path, record)[0]  # noqa: E731
    return _decode_in_memory(files, decode)


def _check_classes(root, class_names, labels, skipped):
    counts = np.bincount(labels, minlength=len(class_names))
    for name, count in zip(class_names, counts):
        if count == 0:
            mine = [s for s in skipped if Path(s[0]).parent.name == name]
            raise GlassnetError(f"image folder {root}: class '{name}' has no readable image"
                                + (f" ({skip_report(mine, len(mine))})" if mine else " (its folder is empty)"))


def skip_report(skipped, total):
    """'skipped 3 of 120 files: a.txt (why), ...' naming the first few."""
    shown = "; ".join(f"{Path(path).name} ({reason.split(': ', 1)[-1]})" for path, reason in skipped[:SHOWN_SKIPS])
    more = f"; and {len(skipped) - SHOWN_SKIPS} more" if len(skipped) > SHOWN_SKIPS else ""
    return f"skipped {len(skipped)} of {total} files: {shown}{more}"


def stratified_split(labels, test_fraction, seed):
    """(train, test) indices: each class shuffled with ``seed`` and split at ``test_fraction``
    (every class keeps at least one training image)."""
    if not 0 < test_fraction < 1:
        raise GlassnetError(f"test_fraction must be in (0, 1). Received: {test_fraction!r}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = min(int(round(len(members) * test_fraction)), len(members) - 1)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def channel_statistics(pixels, rows):
    """Per-channel mean and std (in [0, 1] pixel units) of ``pixels[rows]``, read in chunks."""
    channels = pixels.shape[1]
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    for start in range(0, len(rows), STATISTICS_CHUNK):
        chunk = pixels[np.sort(rows[start:start + STATISTICS_CHUNK])].astype(np.float64) / 255.0
        total += chunk.sum(axis=(0, 2, 3))
        squares += np.square(chunk).sum(axis=(0, 2, 3))
        count += chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)        # a flat channel is left unscaled
    return mean.tolist(), std.tolist()
