"""Both cores for one batch: the batch split over threads, each running the whole network on its part.

NumPy runs the memory-bound passes (im2col, pooling, ReLU, transposes) on one core, and the BLAS
threads of a GEMM cannot help with them. Here a large batch is cut into one contiguous part per
thread; each thread runs every node of the model's graph forward (and later backward) on its
part through its own *replicas* of the layers: shallow copies that share the parameters but keep their own caches and
gradients. Each thread's BLAS runs single-threaded meanwhile (threadpoolctl), so the threads do
not fight over the cores. Backward sums the replicas' gradients into the layers' ``grads``: a
GEMM over the whole batch, written as a sum of two GEMMs over its halves (the same numbers up to
the order of floating-point sums), added up while the parts' backward passes run (``GradientFold``).

Measured on this 2-core machine (float32, interleaved A/B against one pass, ms per training step):
simple, batch 100: 18.2 -> 15.0; lenet, batch 256: 70.2 -> 59.3. Batches under ``2 * MIN_PART`` stay
whole (lenet at batch 64 runs as two parts of 32: 0.71-0.88 of the time of one pass, A/B in separate
processes; docs/accuracy-and-speed.md).

A thread's share of more than ``MAX_PART`` samples is cut again: the parts outnumber the threads, and
each thread runs its share of them one after the other (lenet b512 training 0.73-0.91 of the time, simple
b512 0.75-0.79).

Used for NumPy models in which every layer treats samples independently (Dropout too: in training each
Dropout draws the whole batch's mask before the parts run, and each part takes its rows), or is a
BatchNorm2D, whose batch statistics in training are summed over the parts running side by side
(``PartSums``: then no more parts than threads; training steps, in-process toggle: resnet_mini b64 0.73,
mobilenet_mini b64 0.57, ResNet-50 b8 0.73), on batches of at least ``MIN_PART`` samples per part, or fewer
where a sample is large (at least ``MIN_PART_VALUES`` input values a part: ImageNet-sized images go one to a
part; inference b8, in-process toggle: ResNet-50 0.75-0.89, VGG-16 0.82, MobileNetV2 0.76; ResNet-50 b2
0.90-0.93), when threadpoolctl is installed and more than one CPU is usable. ``GLASSNET_THREADS=1`` turns it
off.
"""
import copy
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..nn.layers.activations import PartCaches
from ..nn.layers.conv import BATCH_PART

MIN_PART = 24          # samples per part at least: below, thread hand-offs and the GIL eat the gain (A/B in
                       # separate processes, docs/accuracy-and-speed.md: lenet b64 0.71-0.88 of 48's time)
MAX_PART = 64          # samples per part at most: a lenet step costs 257 us a sample at 64, 294 at 128 (one
                       # thread, interleaved): a part's arrays stay nearer the caches
MIN_PART_VALUES = 100_000  # ... or at least this many input values per part: a sample this large (an image of
                           # 3x224x224 has 150,528) is worth a thread by itself (ResNet-50 inference b8 ~0.75)
MAX_SPLIT_WEIGHT_BYTES = 64 << 20  # for training, weights at most this large a layer: each part past the first
                                   # holds its gradient until it is added (VGG-16 b8, fc6's 392 MiB: split, the
                                   # step peaked at 2,151 MiB against 1,930 whole, for 0.97 of the time)
PART_WAIT_SECONDS = 600    # a part waits this long at most for the others' batch statistics (PartSums)
# glassnet's layers that treat every sample on its own and keep their state in attributes
PER_SAMPLE = {"Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
              "Identity", "Softmax", "Add", "Concatenate", "Multiply", "GlobalAvgPool2D", "GlobalMaxPool2D",
              "ReLU6", "ELU", "SELU", "GELU", "SiLU", "Hardsigmoid", "Hardswish", "Softplus", "Softsign", "PReLU",
              "LogSoftmax", "ConvTranspose2D", "Pad2D", "Upsample2D", "PixelShuffle", "ChannelShuffle", "LRN",
              "Rescaling", "Reshape", "Dropout"}    # (Dropout in training: the batch's masks drawn first)
# ... and those that do so in evaluation: BatchNorm2D with its running statistics
PER_SAMPLE_IN_EVALUATION = {"BatchNorm2D"}
_pool = None
_controller = None
_threads = None        # set by use_threads (an MPI rank's share of the cores)


def use_threads(threads):
    """Cut batches into at most ``threads`` parts from now on (``distributed.Group.share_cores``)."""
    global _threads
    _threads = threads


def thread_count():
    """Parts a batch is cut into: ``GLASSNET_THREADS``, else ``use_threads``' number, else the CPUs this
    process may use (at most 4)."""
    setting = os.environ.get("GLASSNET_THREADS", "")
    if setting.isdigit() and int(setting) >= 1:
        return int(setting)
    if _threads is not None:
        return _threads
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:                  # not on Linux
        usable = os.cpu_count() or 1
    return max(1, min(usable, 4))


def _blas_controller():
    """threadpoolctl's controller (to run the BLAS single-threaded inside the threads), or None."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
        else:
            _controller = ThreadpoolController()
    return _controller or None


def _run(parts, work):
    """``work(k)`` for k in range(parts) on this thread and ``thread_count() - 1`` of the pool's, thread t
    taking parts t, t + threads, t + 2 * threads, ...; BLAS at 1 thread. With one helper (two threads) a
    part's forward and backward run on the same thread, so its arrays are freed by the thread (and malloc
    arena) that made them, and are still in that core's cache. (Parts taken from a shared counter instead
    moved between threads from step to step: a simple b100 step faulted 507 pages in instead of ~0.)"""
    global _pool
    threads = min(parts, thread_count())
    if _pool is None or _pool._max_workers < threads - 1:
        _pool = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="glassnet")

    def take_parts(first):
        BATCH_PART.one_thread = True            # (conv.winograd_pays: the BLAS is on one thread here)
        try:
            for k in range(first, parts, threads):
                work(k)
        finally:
            BATCH_PART.one_thread = False
    errors = []
    with _blas_controller().limit(limits=1, user_api="blas"):
        pending = [_pool.submit(take_parts, t) for t in range(1, threads)]
        try:
            take_parts(0)
        except BaseException as error:          # the other threads are still waited for
            errors.append(error)
        for future in pending:
            try:
                future.result()                 # a thread's exception is raised here
            except BaseException as error:
                errors.append(error)
    if errors:   # the part's own error, not the broken barrier it left the other parts at (PartSums)
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])


class PartSums:
    """Sums of arrays over the parts of a batch split that run side by side, one per thread: BatchNorm2D's
    batch statistics in training (its ``group_sum``, as MPI's ranks share theirs in distributed.py). Each
    part hands in its arrays and waits for the others (a barrier); every part then adds them up in part
    order, so every part gets the same sums, bits included."""

    def __init__(self, parts):
        self.barrier = threading.Barrier(parts, timeout=PART_WAIT_SECONDS)
        self.handed_in = [None] * parts

    def for_part(self, k):
        """Part k's ``group_sum(arrays) -> [the sum over the parts of each array]``."""
        def group_sum(arrays):
            self.handed_in[k] = list(arrays)
            self.barrier.wait()                                 # every part's arrays are in
            sums = [functools.reduce(np.add, [part[i] for part in self.handed_in]) for i in range(len(arrays))]
            self.barrier.wait()                                 # every part has read them: reusable
            return sums
        return group_sum


class BatchSplit:
    """One forward pass of a model's graph (``glassnet.models.graph.Graph``, one input and one output) cut
    into parts, kept until its backward pass. Every node of every part runs through its own replica."""

    def __init__(self, graph, x, parts, keep=True):
        n = x.shape[0]
        bounds = [n * k // parts for k in range(parts + 1)]
        self.slices = [slice(bounds[k], bounds[k + 1]) for k in range(parts)]
        self.graph = graph
        self.runners = [[replica(graph.layers[index]) for index, _ in graph.nodes] for _ in range(parts)]
        self.sums = self._share_batch_statistics(parts)
        self._draw_dropout_masks(x)
        outputs = [None] * parts

        def forward(k):
            runners = self.runners[k]
            part = [x[self.slices[k]]]
            # keep=False (Model.infer): nothing kept for backward (Graph.infer)
            outputs[k] = (graph.forward(part, runners) if keep else graph.infer(part, runners))[0]
        _run(parts, self._aborting(forward))
        self.output = np.concatenate(outputs)
        if not keep:                                          # nothing of an earlier pass stays either
            for layer in graph.layers:
                layer.clear_cache()
            return
        for layer, uses in zip(graph.layers, graph.uses):    # what fit reads after a forward pass: ReLU masks
            layer.clear_cache()
            if hasattr(layer, "positive_mask"):     # joined when read (positive_mask): fit reads them, a step not
                layer._cache = PartCaches(runners[uses[0]]._cache for runners in self.runners)

    def _share_batch_statistics(self, parts):
        """PartSums for the replicas of BatchNorm2D in training (None without one): their batch statistics
        are summed over the parts; only part 0's replica writes the running statistics into the layer."""
        norms = [k for k, (index, _) in enumerate(self.graph.nodes)
                 if shares_batch_statistics(self.graph.layers[index])]
        if not norms:
            return None
        sums = PartSums(parts)
        for part, runners in enumerate(self.runners):
            for k in norms:
                runners[k].group_sum = sums.for_part(part)
                if part > 0:
                    runners[k].buffers = dict(runners[k].buffers)    # its updates go nowhere
        return sums

    def _draw_dropout_masks(self, x):
        """Each Dropout in training draws the whole batch's mask now, node by node as one pass draws them,
        and each part's replica takes its rows of it: the parts get one pass's masks, and the generators are
        left where one pass leaves them."""
        drops = [k for k, (index, _) in enumerate(self.graph.nodes) if draws_masks(self.graph.layers[index])]
        if not drops:
            return
        shapes = self.graph.value_shapes([x.shape[1:]])
        for k in drops:
            index, sources = self.graph.nodes[k]
            keep = self.graph.layers[index].draw_keep((x.shape[0],) + shapes[sources[0]])
            for runners, rows in zip(self.runners, self.slices):
                runners[k].drawn_keep = keep[rows]

    def _aborting(self, work):
        """``work(k)``, breaking the parts' barrier when it fails, so no other part waits for it forever."""
        def run(k):
            try:
                work(k)
            except BaseException:
                if self.sums is not None:
                    self.sums.barrier.abort()
                raise
        return run

    def backward(self, dy, input_grad):
        """dy: dL/d(output) of the whole batch -> dL/dx (or None); the layers' grads summed over the parts."""
        parts = len(self.slices)
        inputs = [None] * parts

        fold = GradientFold(self.graph.uses, parts)

        def backward(k):
            grads = self.graph.backward([dy[self.slices[k]]], self.runners[k], input_grad,
                                        took_gradients=functools.partial(fold.add, k))
            inputs[k] = grads[0] if input_grad else None
        _run(parts, self._aborting(backward))
        fold.write_into(self.graph.layers)
        return np.concatenate(inputs) if input_grad else None


class GradientFold:
    """Each layer's parameter gradients summed over its calls in every part of a batch split while the
    parts' backward passes run: a part's gradients are let go as soon as they are added, instead of every
    part holding a whole set until the end (a set is ResNet-50's 98 MiB, VGG-16's 528).

    The sums go in a fixed order, part by part and within a part call by call (``Graph.uses``): the same
    numbers whichever part finishes first. A call's gradients that come before an earlier call's wait for them.
    """

    def __init__(self, uses, parts):
        self.place = {}                  # (part, node) -> (layer, its place in the layer's order)
        for layer, nodes in enumerate(uses):
            for place, (part, k) in enumerate((part, k) for part in range(parts) for k in nodes):
                self.place[part, k] = (layer, place)
        self.sums = {}                   # layer -> {name: the sum so far}
        self.added = [0] * len(uses)     # layer -> calls in its sum so far
        self.waiting = {}                # (layer, place) -> a call's gradients that came early
        self.lock = threading.Lock()

    def add(self, part, k, runner):
        """Take part ``part``'s node ``k``'s gradients out of its runner (``Graph.backward``'s
        ``took_gradients``) and add them to the sums, with any that waited for them."""
        grads, runner.grads = runner.grads, {}
        if not grads:
            return
        layer, place = self.place[part, k]
        with self.lock:
            self.waiting[layer, place] = grads
            while (layer, self.added[layer]) in self.waiting:
                grads = self.waiting.pop((layer, self.added[layer]))
                if layer not in self.sums:
                    self.sums[layer] = grads              # its own arrays now: added into in place
                else:
                    for name, total in self.sums[layer].items():
                        np.add(total, grads[name], out=total)
                self.added[layer] += 1

    def write_into(self, layers):
        """Every layer's ``grads`` the sums over all its calls."""
        for index, layer in enumerate(layers):
            for name in layer.params:
                layer.grads[name] = self.sums[index][name]


def replica(layer):
    """A shallow copy of ``layer``: the same parameters and buffers, its own caches and gradients."""
    twin = copy.copy(layer)
    twin.grads = {}
    return twin


def treats_samples_apart(layer):
    """Whether ``layer`` computes each sample's output from that sample alone (in its present mode)."""
    name = type(layer).__name__
    return name in PER_SAMPLE or (name in PER_SAMPLE_IN_EVALUATION and not layer.training)


def draws_masks(layer):
    """Whether ``layer`` is a Dropout that draws a mask on its next forward (training, p > 0)."""
    return type(layer).__name__ == "Dropout" and layer.training and layer.p > 0


def shares_batch_statistics(layer):
    """Whether ``layer`` is a BatchNorm2D in training on one process (no MPI ``group_sum``): its statistics
    couple the samples, which the split handles by summing them over the parts (``PartSums``)."""
    return type(layer).__name__ == "BatchNorm2D" and layer.training and layer.group_sum is None


def parts_for(layers, x, backward=True):
    """How many parts to cut the batch ``x`` into (1: run as usual): one per thread, and more where a
    thread's share passes ``MAX_PART`` samples (each thread then runs several parts one after the other),
    but never more than threads when BatchNorm's batch statistics are summed over the parts (they wait for
    each other). ``backward``: a backward pass will follow (then a layer with more than
    ``MAX_SPLIT_WEIGHT_BYTES`` of weights keeps the batch whole)."""
    if type(x) is not np.ndarray or x.shape[0] < 2:     # checked first: runs on every forward
        return 1
    min_part = min(MIN_PART, -(-MIN_PART_VALUES // max(1, x.size // x.shape[0])))     # samples a part needs
    threads = min(thread_count(), x.shape[0] // min_part)
    if threads < 2 or _blas_controller() is None:
        return 1
    parts = max(threads, -(-x.shape[0] // MAX_PART))
    coupled = False                          # a BatchNorm2D in training: statistics summed over the parts
    for layer in layers:
        if shares_batch_statistics(layer):
            coupled = True
        elif not treats_samples_apart(layer):
            return 1
    if coupled:
        parts = threads
    weights = [value for layer in layers for value in layer.params.values()]
    if any(type(value) is not np.ndarray for value in weights):
        return 1
    if backward and max((value.nbytes for value in weights), default=0) > MAX_SPLIT_WEIGHT_BYTES:
        return 1
    return parts
