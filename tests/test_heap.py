"""heap.py: the malloc pad that lets a training step reuse the previous step's pages.

The effect is checked by counting page faults (the kernel's count, not a timing): a training
step without the pad faults its large arrays in afresh, with it (after warm-up) it does not.
"""
import json
import os
import subprocess
import sys

import pytest

from glassnet.training import heap

STEPS_SCRIPT = """
import json, resource, sys
import numpy as np
import glassnet as gn
from glassnet.apps.benchmark.cases import CASES, batch, glassnet_trainer
x, y = batch(CASES["simple"], np.float32)
_, train, _ = glassnet_trainer(CASES["simple"], np.float32)
for _ in range(3):
    train(x, y)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    train(x, y)
print(json.dumps((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5))
"""


ARRAYS_SCRIPT = """
import json, resource
import numpy as np
from glassnet.training.heap import keep_freed_memory
keep_freed_memory()                               # first thing: before any allocation has grown the heap
for repeat in range(8):
    if repeat == 3:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(5_000_000, dtype=np.float32)  # 20 MB, written: ~4,900 pages
    del block
print(json.dumps((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5))
"""


def faults_per_step(pad_mb, script=STEPS_SCRIPT):
    env = dict(os.environ, GLASSNET_MALLOC_PAD_MB=pad_mb)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt and page-fault counts: glibc on Linux")
def test_the_pad_stops_training_steps_from_faulting_their_arrays_in_again():
    without, with_pad = faults_per_step("0"), faults_per_step("256")
    # simple at batch 100 in float32 allocates ~20 MB of large arrays per step (~5,000 pages);
    # measured here: ~3,600 faults per step without the pad, 0 with it
    assert with_pad <= without / 10 + 20, (without, with_pad)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt and page-fault counts: glibc on Linux")
def test_a_large_array_freed_and_allocated_again_reuses_its_pages():
    # once mallopt is called glibc stops raising its threshold for mapping blocks directly: a pad
    # alone left a 20 MB block mapped afresh (and faulted in) whenever the heap's top was too small;
    # with the threshold fixed at 32 MiB it comes from the heap and its pad every time
    without, with_pad = faults_per_step("0", ARRAYS_SCRIPT), faults_per_step("256", ARRAYS_SCRIPT)
    assert with_pad <= 20, (without, with_pad)


@pytest.mark.parametrize("setting, expected", [(None, 256 * 2**20), ("64", 64 * 2**20), ("0", 0), ("lots", 0),
                                               (" 8 ", 8 * 2**20)])
def test_pad_size_comes_from_the_environment(monkeypatch, setting, expected):
    if setting is None:
        monkeypatch.delenv("GLASSNET_MALLOC_PAD_MB", raising=False)
    else:
        monkeypatch.setenv("GLASSNET_MALLOC_PAD_MB", setting)
    assert heap.pad_bytes() == expected


def test_without_mallopt_nothing_happens_and_nothing_fails(monkeypatch):
    def no_library(name):
        raise OSError("no C library here")
    monkeypatch.setattr(heap.ctypes, "CDLL", no_library)
    assert heap.set_top_pad(2**20) is False


def test_pad_zero_leaves_malloc_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "_done", False)
    monkeypatch.setattr(heap, "set_top_pad", calls.append)
    monkeypatch.setenv("GLASSNET_MALLOC_PAD_MB", "0")
    heap.keep_freed_memory()
    assert calls == []
    monkeypatch.setattr(heap, "_done", False)
    monkeypatch.setenv("GLASSNET_MALLOC_PAD_MB", "16")
    heap.keep_freed_memory()
    heap.keep_freed_memory()                          # once per process
    assert calls == [16 * 2**20]
