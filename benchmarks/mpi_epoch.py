"""Epoch time of data-parallel training: run under ``mpiexec -n N`` (or alone for one process).

    python benchmarks/mpi_epoch.py --batch-size 128
    mpiexec -n 2 python benchmarks/mpi_epoch.py --batch-size 128

Trains lenet (float32, SGD momentum) on mnist5k for one warm-up epoch and one timed epoch with
``fit(distributed=True)``, one BLAS thread per process, and prints the timed epoch's wall time
on rank 0.
"""
import argparse
import time

from threadpoolctl import threadpool_limits

import glassnet as gn
from glassnet.training.distributed import world


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per process")
    args = parser.parse_args()
    threadpool_limits(args.threads)
    group = world()
    data = gn.datasets.mnist5k()
    model = gn.presets.build("lenet", data.input_shape, 10, seed=0, dtype="float32")
    settings = dict(batch_size=args.batch_size, optimizer="momentum", lr=0.01, seed=0, verbose=False,
                    distributed=True)
    model.fit(data.x_train, data.y_train, epochs=1, **settings)               # warm-up
    group.comm.Barrier()
    started = time.perf_counter()
    model.fit(data.x_train, data.y_train, epochs=1, **settings)
    group.comm.Barrier()
    seconds = time.perf_counter() - started
    if group.is_root:
        accuracy = model.evaluate(data.x_test, data.y_test)[1]
        print(f"ranks {group.size}  batch {args.batch_size}  threads/rank {args.threads}  "
              f"epoch {seconds:.2f} s  ({len(data.y_train) / seconds:,.0f} img/s)  test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
