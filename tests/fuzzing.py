"""Fuzz the model-file and checkpoint loaders with random and mutated bytes.

    python tests/fuzzing.py --inputs 100000 [--seed 0] [--graph-headers]

``--graph-headers`` mutates only the graph entry of a graph model's header (see mutate_graph_header).

Every input must either load or raise GlassnetError: any other exception, an input
slower than the per-input time limit, or memory growth past the limit is a failure
(saved under fuzz-failures/ with its traceback). tests/test_hostile_files.py runs a
short version of the same loop on every test run.
"""
import argparse
import io
import json
import resource
import signal
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

import numpy as np

import glassnet as gn
from glassnet.files.serialization import load_checkpoint

SECONDS_PER_INPUT = 5


def seed_files(folder):
    """Valid files to mutate: two models (float32 and float64, every layer kind), a checkpoint and a graph
    model (a residual Add, a Concatenate, a Multiply, a shared layer, both global poolings)."""
    rng = np.random.default_rng(0)
    model = gn.Sequential([gn.Conv2D(1, 2, 3, padding=1, rng=0), gn.BatchNorm2D(2), gn.ReLU(), gn.MaxPool2D(2),
                           gn.AvgPool2D(1), gn.Dropout(0.2, rng=0), gn.Flatten(), gn.Dense(8, 4, rng=1),
                           gn.LeakyReLU(0.1), gn.Tanh(), gn.Sigmoid(), gn.Identity(), gn.Dense(4, 3, rng=2),
                           gn.Softmax()])
    model.metadata = {"class_names": ["a", "b", "c"], "preprocessing": {"kind": "image", "size": [4, 4]}}
    gn.save(model, folder / "model64.glassnet")
    gn.save(gn.Sequential([gn.Flatten(), gn.Dense(16, 3, rng=3)], dtype="float32"), folder / "model32.glassnet")
    small = gn.Sequential([gn.Flatten(), gn.Dense(16, 3, rng=3)])
    small.fit(rng.standard_normal((8, 1, 4, 4)), rng.integers(0, 3, 8), epochs=1, batch_size=4, optimizer="adam",
              checkpoint=folder / "run.ckpt", verbose=False)
    gn.save(graph_model(), folder / "graph.glassnet")
    return [(folder / name).read_bytes() for name in ("model64.glassnet", "model32.glassnet", "run.ckpt",
                                                      "graph.glassnet")]


def graph_model():
    x = gn.Input((2, 6, 6))
    shared = gn.Conv2D(2, 2, 3, padding=1, rng=0)
    a = gn.ReLU()(shared(x))
    b = shared(gn.BatchNorm2D(2)(a))
    joined = gn.Concatenate()([gn.Add()([a, b]), gn.Multiply()([a, x])])
    pooled = gn.Concatenate()([gn.GlobalAvgPool2D()(joined), gn.GlobalMaxPool2D()(joined)])
    return gn.Model(x, gn.Dense(8, 3, rng=1)(pooled))


def mutate_graph_header(data, rng):
    """Rewrite a graph model's header with its graph damaged: references pointing anywhere, values
    swapped, lists emptied, nodes dropped, duplicated or reordered."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = json.loads(np.load(io.BytesIO(members["__glassnet__.npy"])).tobytes())
    graph = header["graph"]
    nodes = graph["nodes"]
    size = len(nodes) + len(graph["inputs"])
    choice = rng.integers(7)
    if choice == 0:                                    # an input reference pointing anywhere
        node = nodes[rng.integers(len(nodes))]
        node[1][rng.integers(len(node[1]))] = int(rng.integers(-3, size + 3))
    elif choice == 1:                                  # a layer index pointing anywhere
        nodes[rng.integers(len(nodes))][0] = int(rng.integers(-3, len(header["layers"]) + 3))
    elif choice == 2:                                  # two nodes swapped (a reader before what it reads)
        i, j = rng.integers(len(nodes), size=2)
        nodes[i], nodes[j] = nodes[j], nodes[i]
    elif choice == 3:                                  # a list emptied
        target = [nodes, graph["outputs"], graph["inputs"], nodes[rng.integers(len(nodes))][1]][rng.integers(4)]
        target.clear()
    elif choice == 4:                                  # a node dropped or duplicated
        k = rng.integers(len(nodes))
        nodes.insert(k, nodes[k]) if rng.random() < 0.5 else nodes.pop(k)
    elif choice == 5:                                  # an output or an input shape changed
        if rng.random() < 0.5:
            graph["outputs"][0] = int(rng.integers(-3, size + 3))
        else:
            graph["inputs"][0][rng.integers(len(graph["inputs"][0]))] = int(rng.integers(-1, 40))
    else:                                              # two layers' entries swapped
        layers = header["layers"]
        i, j = rng.integers(len(layers), size=2)
        layers[i], layers[j] = layers[j], layers[i]
    return with_new_header(members, header)


def with_new_header(members, header):
    """The archive of ``members`` (name -> bytes) with its JSON header replaced by ``header``."""
    payload = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, payload)
    members["__glassnet__.npy"] = buffer.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def mutate_json_header(data, rng):
    """Rewrite the JSON header of a valid archive with one value replaced by something hostile."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    raw = np.load(io.BytesIO(members["__glassnet__.npy"]))
    header = json.loads(raw.tobytes())
    hostile = [None, -1, 0, 2 ** 63, 1e308, "os.system", [], {}, [[[[]]]], "x" * 1000, True, 3.5, [2 ** 40, 2 ** 40]]
    paths = []

    def walk(node, trail):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, value in items:
            paths.append(trail + [key])
            walk(value, trail + [key])

    walk(header, [])
    trail = paths[rng.integers(len(paths))]
    node = header
    for key in trail[:-1]:
        node = node[key]
    node[trail[-1]] = hostile[rng.integers(len(hostile))]
    return with_new_header(members, header)


def mutate(data, rng):
    data = bytearray(data)
    choice = rng.integers(8)
    if choice == 0:  # bit flips
        for _ in range(rng.integers(1, 10)):
            position = rng.integers(len(data))
            data[position] ^= 1 << rng.integers(8)
    elif choice == 1:  # overwrite a run with random bytes
        start = rng.integers(len(data))
        data[start:start + rng.integers(1, 64)] = rng.bytes(int(rng.integers(1, 64)))
    elif choice == 2:  # truncate
        data = data[:rng.integers(len(data))]
    elif choice == 3:  # insert random bytes
        start = rng.integers(len(data))
        data[start:start] = rng.bytes(int(rng.integers(1, 256)))
    elif choice == 4:  # duplicate a chunk
        start = rng.integers(len(data))
        data[start:start] = data[start:start + rng.integers(1, 512)]
    elif choice == 5:  # interesting integers at a random place (sizes, offsets, shapes)
        start = rng.integers(max(1, len(data) - 8))
        value = [0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 2 ** 63 - 1, 2 ** 64 - 1][rng.integers(6)]
        data[start:start + 8] = value.to_bytes(8, "little")
    elif choice == 6:
        try:
            return mutate_json_header(bytes(data), rng)
        except Exception:  # noqa: BLE001 -- the input was already broken by an earlier mutation
            return bytes(data)
    else:  # pure noise
        return rng.bytes(int(rng.integers(0, 4096)))
    return bytes(data)


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def fuzz(inputs, seed=0, failures_dir=None, report_every=0, max_rss_mib=1024, graph_headers=False):
    """Run ``inputs`` mutated files through gn.load / load_checkpoint; returns a summary dict."""
    rng = np.random.default_rng(seed)
    failures, outcomes, slowest = [], {"loaded": 0, "GlassnetError": 0}, 0.0
    signal.signal(signal.SIGALRM, _alarm)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        seeds = seed_files(folder)
        target = folder / "fuzzed"
        started = time.perf_counter()
        for index in range(inputs):
            source = 3 if graph_headers else rng.integers(len(seeds))
            if graph_headers:
                data = mutate_graph_header(seeds[source], rng)
                if rng.random() < 0.3:                     # a second damage now and then
                    try:
                        data = mutate_graph_header(data, rng)
                    except (ValueError, IndexError, KeyError, TypeError):  # the first already broke that part
                        pass
            elif source == 3 and rng.random() < 0.5:
                data = mutate_graph_header(seeds[source], rng)
            else:
                data = mutate(seeds[source], rng)
            if not graph_headers and rng.random() < 0.3:  # stack a second mutation now and then
                data = mutate(data, rng) if data else data
            target.write_bytes(data)
            loader = load_checkpoint if source == 2 and rng.random() < 0.8 else gn.load
            signal.alarm(SECONDS_PER_INPUT)
            tick = time.perf_counter()
            try:
                loader(target)
                outcomes["loaded"] += 1
            except gn.GlassnetError:
                outcomes["GlassnetError"] += 1
            except Exception as error:  # noqa: BLE001 -- any other exception is the finding
                failures.append((index, f"{type(error).__name__}: {error}", traceback.format_exc(), data))
            finally:
                signal.alarm(0)
            slowest = max(slowest, time.perf_counter() - tick)
            if report_every and (index + 1) % report_every == 0:
                print(f"{index + 1:,} inputs, {len(failures)} failures, {time.perf_counter() - started:.0f} s",
                      flush=True)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if failures_dir is not None and failures:
        failures_dir = Path(failures_dir)
        failures_dir.mkdir(parents=True, exist_ok=True)
        for index, message, trace, data in failures[:50]:
            (failures_dir / f"input{index}.bin").write_bytes(data)
            (failures_dir / f"input{index}.txt").write_text(trace)
    return {"inputs": inputs, "failures": [(i, m) for i, m, _, _ in failures], "outcomes": outcomes,
            "slowest_seconds": slowest, "max_rss_mib": rss_mib, "rss_ok": rss_mib <= max_rss_mib}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--graph-headers", action="store_true", help="mutate only graph models' graph entries")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    summary = fuzz(args.inputs, args.seed, failures_dir="fuzz-failures", report_every=10_000,
                   graph_headers=args.graph_headers)
    print(f"{summary['inputs']:,} inputs in {time.perf_counter() - started:.0f} s: {summary['outcomes']}, "
          f"{len(summary['failures'])} failures, slowest input {summary['slowest_seconds']:.3f} s, "
          f"peak RSS {summary['max_rss_mib']:.0f} MiB")
    for index, message in summary["failures"][:20]:
        print(f"  input {index}: {message}")
    return 1 if summary["failures"] or not summary["rss_ok"] else 0


if __name__ == "__main__":
    sys.exit(main())
