"""The README's MPI command against one process, as a user runs them: whole ``glassnet train`` commands.

    python benchmarks/mpi_commands.py [--repeats 3] [--datasets digits,mnist5k]

For each data set, alternately: ``glassnet train --dataset D --out ...`` (one process) and
``mpiexec -n 2 glassnet train --dataset D --distributed --out ...``, with no thread setting in the
environment (glassnet shares the cores out itself). Prints each wall time, the range per command,
the header line the MPI run printed, and the CPU (lscpu's model name).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

THREAD_SETTINGS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GLASSNET_THREADS")


def cpu_model():
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    except FileNotFoundError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name")), "unknown")


def timed(command, folder, env):
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env, timeout=1800)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr}")
    return seconds, result.stdout.splitlines()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", default="digits,mnist5k")
    args = parser.parse_args()
    glassnet = shutil.which("glassnet") or sys.exit("glassnet is not installed (pip install -e '.[mpi]')")
    mpiexec = shutil.which("mpiexec") or sys.exit("mpiexec is not installed (pip install -e '.[mpi]')")
    env = {key: value for key, value in os.environ.items() if key not in THREAD_SETTINGS}
    print(f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} usable cores")
    with tempfile.TemporaryDirectory() as folder:
        for dataset in args.datasets.split(","):
            one = [glassnet, "train", "--dataset", dataset, "--out", "one.glassnet"]
            two = [mpiexec, "-n", "2", glassnet, "train", "--dataset", dataset, "--distributed", "--out", "two.glassnet"]
            times = {"1 process": [], "mpiexec -n 2": []}
            for _ in range(args.repeats):
                for label, command in (("1 process", one), ("mpiexec -n 2", two)):
                    seconds, lines = timed(command, folder, env)
                    times[label].append(seconds)
                    print(f"{dataset:8s} {label:13s} {seconds:6.1f} s   {lines[-1]}   ({lines[0]})", flush=True)
            for label, values in times.items():
                print(f"{dataset:8s} {label:13s} {min(values):.1f}-{max(values):.1f} s over {len(values)} runs")


if __name__ == "__main__":
    main()
