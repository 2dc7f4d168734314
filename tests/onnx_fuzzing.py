"""Fuzz the ONNX reader with damaged files that PyTorch's exporter wrote.

    python tests/onnx_fuzzing.py --inputs 100000 [--seed 0]

Seeds: 14 small nets exported by ``torch.onnx.export`` (convolutions with and without bias, padding
and stride, both poolings, BatchNorm, Linear, a flatten, a residual Add, a Concat). Each input is one
seed changed either in its bytes (1 to 8 random bytes) or at the protobuf level (an attribute removed,
emptied or given another type, a node input removed, renamed or pointing at another value, a node
dropped or duplicated, an op renamed, an initializer's dims changed). ``gn.import_onnx`` must load it
or raise GlassnetError: any other exception, or an input slower than the time limit, is a failure.
tests/test_graph_interop.py runs a short version of the same loop on every test run.
"""
import argparse
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import onnx
import torch

import glassnet as gn

SECONDS_PER_INPUT = 5
nn = torch.nn


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.fc = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 1), nn.Linear(2 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.a(x) + self.b(x)), 1))


class Branches(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 3, 1), nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return torch.cat([self.a(x), torch.max_pool2d(self.b(x), 3, 1, 1)], 1).mean(dim=(2, 3))


def seed_nets():
    torch.manual_seed(0)
    return [
        nn.Sequential(nn.Conv2d(2, 3, 3)),
        nn.Sequential(nn.Conv2d(2, 3, 3, bias=False)),
        nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.ReLU()),
        nn.Sequential(nn.MaxPool2d(2)),
        nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1)),
        nn.Sequential(nn.AvgPool2d(2)),
        nn.Sequential(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2)),
        nn.Sequential(nn.Flatten(), nn.Linear(72, 4)),
        nn.Sequential(nn.Flatten(), nn.Linear(72, 4, bias=False), nn.Sigmoid()),
        nn.Sequential(nn.Conv2d(2, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(64, 3), nn.Softmax(dim=1)),
        nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2, padding=1)),
        nn.Sequential(nn.BatchNorm2d(2), nn.Conv2d(2, 2, 2), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2)),
        Residual(),
        Branches(),
    ]


def seed_files(folder):
    """The 14 seed nets as ONNX bytes, written by PyTorch's TorchScript exporter (opset 17)."""
    seeds = []
    for index, net in enumerate(seed_nets()):
        path = folder / f"seed{index}.onnx"
        net.eval()
        torch.onnx.export(net, (torch.randn(1, 2, 6, 6),), str(path), dynamo=False, opset_version=17)
        seeds.append(path.read_bytes())
    return seeds


def change_bytes(data, rng):
    data = bytearray(data)
    for _ in range(rng.integers(1, 9)):
        data[rng.integers(len(data))] = rng.integers(256)
    return bytes(data)


def change_proto(data, rng):
    """One protobuf-level change to a node, an attribute, an input or an initializer."""
    model = onnx.load_model_from_string(data)
    graph = model.graph
    nodes = list(graph.node)
    node = nodes[rng.integers(len(nodes))]
    names = [v.name for v in graph.input] + [t.name for t in graph.initializer] + [o for n in nodes for o in n.output]
    choice = rng.integers(9)
    if choice == 0 and node.attribute:                                   # an attribute removed
        del node.attribute[rng.integers(len(node.attribute))]
    elif choice == 1 and node.attribute:                                 # an attribute of another type or empty
        attribute = node.attribute[rng.integers(len(node.attribute))]
        name = attribute.name
        replacement = [onnx.helper.make_attribute(name, 1.5), onnx.helper.make_attribute(name, "x"),
                       onnx.helper.make_attribute(name, [], attr_type=onnx.AttributeProto.INTS),
                       onnx.helper.make_attribute(name, [7] * 9),
                       onnx.helper.make_attribute(name, -3), onnx.helper.make_attribute(name, [-1, 0])]
        attribute.CopyFrom(replacement[rng.integers(len(replacement))])
    elif choice == 2 and node.input:                                     # an input removed
        del node.input[rng.integers(len(node.input))]
    elif choice == 3 and node.input:                                     # an input pointing elsewhere
        node.input[rng.integers(len(node.input))] = [names[rng.integers(len(names))], "", "nowhere"][rng.integers(3)]
    elif choice == 4 and len(nodes) > 1:                                 # a node dropped
        graph.node.remove(node)
    elif choice == 5:                                                    # a node duplicated
        graph.node.append(node)
    elif choice == 6:                                                    # an op renamed
        node.op_type = ["Conv", "Gemm", "MaxPool", "Add", "Concat", "Flatten", "Reshape", "Relu"][rng.integers(8)]
    elif choice == 7 and graph.initializer:                              # an initializer's dims changed
        tensor = graph.initializer[rng.integers(len(graph.initializer))]
        dims = list(tensor.dims) or [1]
        dims[rng.integers(len(dims))] = int(rng.integers(-2, 9))
        del tensor.dims[:]
        tensor.dims.extend(dims)
    else:                                                                # an output renamed
        node.output[0] = names[rng.integers(len(names))]
    return model.SerializeToString()


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def fuzz(inputs, seed=0, report_every=0):
    """``inputs`` damaged files through gn.import_onnx; returns a summary dict."""
    rng = np.random.default_rng(seed)
    failures, outcomes, slowest = [], {"loaded": 0, "GlassnetError": 0}, 0.0
    signal.signal(signal.SIGALRM, _alarm)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        seeds = seed_files(folder)
        target = folder / "fuzzed.onnx"
        started = time.perf_counter()
        for index in range(inputs):
            source = seeds[rng.integers(len(seeds))]
            data = change_bytes(source, rng) if rng.random() < 0.5 else change_proto(source, rng)
            target.write_bytes(data)
            signal.alarm(SECONDS_PER_INPUT)
            tick = time.perf_counter()
            try:
                gn.import_onnx(target)
                outcomes["loaded"] += 1
            except gn.GlassnetError:
                outcomes["GlassnetError"] += 1
            except Exception as error:  # noqa: BLE001 -- any other exception is the finding
                failures.append((index, f"{type(error).__name__}: {error}", traceback.format_exc()))
            finally:
                signal.alarm(0)
            slowest = max(slowest, time.perf_counter() - tick)
            if report_every and (index + 1) % report_every == 0:
                print(f"{index + 1:,} inputs, {len(failures)} escapes, {time.perf_counter() - started:.0f} s",
                      flush=True)
    return {"inputs": inputs, "failures": failures, "outcomes": outcomes, "slowest_seconds": slowest}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    summary = fuzz(args.inputs, args.seed, report_every=10_000)
    print(f"{summary['inputs']:,} inputs in {time.perf_counter() - started:.0f} s: {summary['outcomes']}, "
          f"{len(summary['failures'])} escapes, slowest input {summary['slowest_seconds']:.3f} s")
    seen = set()
    for index, message, trace in summary["failures"]:
        where = trace.strip().splitlines()[-3].strip()
        if (message.split(":")[0], where) not in seen:
            seen.add((message.split(":")[0], where))
            print(f"  input {index}: {message}\n    at {where}")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
