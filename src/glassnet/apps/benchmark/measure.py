"""Timing, peak memory and per-layer profiles. Figures, never assertions."""
import json
import os
import statistics
import subprocess
import sys
import time

from ...training.heap import keep_freed_memory


def calibrate(step, target_seconds):
    """How many calls of ``step`` take about ``target_seconds`` (at least 1), after one warm-up call."""
    step()
    started = time.perf_counter()
    step()
    once = max(time.perf_counter() - started, 1e-6)
    return max(1, round(target_seconds / once))


def rate(step, calls, images_per_call):
    """Images per second over ``calls`` calls of ``step``."""
    started = time.perf_counter()
    for _ in range(calls):
        step()
    return images_per_call * calls / (time.perf_counter() - started)


def side_by_side(steps, images_per_call, repeats, target_seconds, warmup=2, pause=0.0):
    """Median images/s of each named step, the repeats interleaved so machine noise hits all alike.

    steps : dict name -> zero-argument function. Returns dict name -> {"median", "all"}.
    pause : seconds to sleep before each timed repeat, so that the thread pools of the framework timed
        before (OpenMP's, ONNX Runtime's and OpenBLAS's threads spin a while after their work) are asleep
        and do not take the cores from the next one.
    """
    calls = {}
    for name, step in steps.items():
        for _ in range(warmup):
            step()
        calls[name] = calibrate(step, target_seconds)
    rates = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            time.sleep(pause)
            rates[name].append(rate(step, calls[name], images_per_call))
    return {name: {"median": statistics.median(values), "all": values} for name, values in rates.items()}


# -- peak memory ---------------------------------------------------------------------------

def peak_memory(framework, case_name, dtype, threads, steps=3):
    """Peak resident memory (bytes) that building and training ``steps`` steps adds, measured
    in a fresh Python process so that frameworks do not share allocations; None if unavailable."""
    command = [sys.executable, "-m", "glassnet.apps.benchmark.memory", framework, case_name, dtype, str(threads),
               str(steps)]
    done = subprocess.run(command, capture_output=True, text=True, env=memory_environment(), timeout=600)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"]


def memory_environment():
    """The environment of a peak-memory child process: freed arrays go back to the OS in every framework."""
    return dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")


def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def reset_peak_memory():
    """Reset this process's peak resident set size (VmHWM) to the current one (Linux: /proc/self/clear_refs);
    returns the current resident size in KiB, the baseline for ``peak_since``."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return _status_kib("VmRSS")


def peak_since(baseline_kib):
    """Bytes the peak resident set size rose above ``baseline_kib`` since ``reset_peak_memory``."""
    return (_status_kib("VmHWM") - baseline_kib) * 1024


# -- per-layer profile -------------------------------------------------------------------------

def profile(model, loss, optimizer, x, y, steps):
    """Mean milliseconds per training step in each layer's forward and backward, the loss, the optimizer.

    Returns a list of (label, forward ms, backward ms) rows, the last ones for the loss and optimizer.
    """
    keep_freed_memory()                  # as Sequential.forward does, which this loop stands in for
    forward = [0.0] * len(model.layers)
    backward = [0.0] * len(model.layers)
    loss_time, optimizer_time = 0.0, 0.0
    model.train()
    for _ in range(steps):
        h = x
        for index, layer in enumerate(model.layers):
            started = time.perf_counter()
            h = layer.forward(h)
            forward[index] += time.perf_counter() - started
        started = time.perf_counter()
        loss.forward(h, y)
        d = loss.backward()
        loss_time += time.perf_counter() - started
        for index in range(len(model.layers) - 1, -1, -1):
            started = time.perf_counter()
            if index == 0:
                model.layers[0].backward_parameters(d)
            else:
                d = model.layers[index].backward(d)
            backward[index] += time.perf_counter() - started
        started = time.perf_counter()
        optimizer.step()
        optimizer_time += time.perf_counter() - started
    ms = 1000.0 / steps
    rows = [(f"{index}: {layer!r}", forward[index] * ms, backward[index] * ms)
            for index, layer in enumerate(model.layers)]
    rows.append(("loss (forward + backward)", loss_time * ms, 0.0))
    rows.append(("optimizer step", 0.0, optimizer_time * ms))
    return rows
