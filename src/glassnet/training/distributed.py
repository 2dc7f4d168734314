"""Data-parallel training over MPI (``mpiexec -n N glassnet train --distributed``, or
``fit(..., distributed=True)`` in a script started by ``mpiexec``).

Every rank holds the data set and draws the same sample order, so every rank knows the global
batch. Rank r trains on its contiguous share of it. Its loss gradient is scaled by
``n_r / N`` (its share of the global mean), so everything it back-propagates is its contribution
to the global batch's gradient; one ``Allreduce`` per step sums the contributions of all ranks
(gradients, loss, correct count, ReLU activity) and every rank takes the same optimizer step.
BatchNorm sums its batch statistics over the ranks the same way, and Dropout draws the global
batch's mask and keeps its rows, so N ranks compute what one process computes on the same global
batch (up to the order of floating-point sums). Only rank 0 prints and writes files.

The cores of a machine are shared out: each rank's BLAS (and glassnet's batch split) runs its usable
cores divided by the ranks on this machine that may use the same cores, unless the user chose a number
(``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` or ``GLASSNET_THREADS``). Two
ranks each running a 2-thread BLAS on 2 cores made four threads fight for two cores: ``mpiexec -n 2``
took 20.1 s on digits against 6.6-7.1 s in one process (2-core Intel Xeon, session 6).
"""
import os

import numpy as np

from ..errors import GlassnetError
from . import replicas

THREAD_SETTINGS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GLASSNET_THREADS")


class Group:
    """The processes of one MPI run (mpi4py's ``COMM_WORLD``)."""

    def __init__(self, comm, mpi):
        self.comm, self.mpi = comm, mpi
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    @property
    def is_root(self):
        return self.rank == 0

    def share(self, n):
        """This rank's contiguous share of a global batch of ``n`` samples, as a slice."""
        return slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)

    def sum(self, arrays):
        """Element-wise sums over all ranks of ``arrays`` (NumPy), in one Allreduce; float64 on the wire."""
        arrays = [np.asarray(a) for a in arrays]
        if self.size == 1:
            return arrays
        flat = np.concatenate([a.astype(np.float64, copy=False).ravel() for a in arrays])
        total = np.empty_like(flat)
        self.comm.Allreduce(flat, total, op=self.mpi.SUM)
        out, start = [], 0
        for a in arrays:
            out.append(total[start:start + a.size].reshape(a.shape).astype(a.dtype, copy=False))
            start += a.size
        return out

    def cores_of_ranks_here(self):
        """The cores each rank on this machine may run on (MPI's shared-memory split), this rank's first."""
        mine = _usable_cores()
        if self.size == 1:
            return [mine]
        local = self.comm.Split_type(self.mpi.COMM_TYPE_SHARED)
        try:
            everyone, me = local.allgather(mine), local.Get_rank()
        finally:
            local.Free()
        return [mine] + [cores for rank, cores in enumerate(everyone) if rank != me]

    def share_cores(self):
        """Give this rank its share of the cores as BLAS and batch-split threads (unless the user set a
        thread count): its usable cores divided by the ranks on this machine that may use the same cores
        (all of them when mpiexec binds nothing; none but itself when each rank is bound to its own).
        Returns the threads each rank runs, for the run's header."""
        chosen = [os.environ[name] for name in THREAD_SETTINGS if os.environ.get(name, "").isdigit()]
        if chosen:
            return int(chosen[0])
        mine, *others = self.cores_of_ranks_here()
        sharing = 1 + sum(1 for cores in others if cores & mine)
        threads = max(1, len(mine) // sharing)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            raise GlassnetError("distributed training needs threadpoolctl to share the cores between ranks: "
                                "pip install 'glassnet[mpi]'") from None
        threadpool_limits(threads, user_api="blas")
        replicas.use_threads(threads)
        return threads

    def same_everywhere(self, value, what):
        """Refuse to start when ranks disagree on ``value`` (e.g. the data set size)."""
        values = self.comm.allgather(value)
        if any(v != values[0] for v in values):
            raise GlassnetError(f"fit(distributed=True): the ranks disagree on {what}: {values}")


def world():
    """The group of every process ``mpiexec`` started (one process when run without it)."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise GlassnetError("distributed training needs mpi4py and an MPI library: pip install 'glassnet[mpi]'") from None
    return Group(MPI.COMM_WORLD, MPI)


def _usable_cores():
    """The set of cores this process may run on (a binding narrows it)."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:                    # not on Linux: every core
        return set(range(os.cpu_count() or 1))


def attach(model, group, batch_share=None):
    """Tell BatchNorm and Dropout layers about the group (``None`` detaches them)."""
    for layer in model.layers:
        if hasattr(layer, "group_sum"):
            layer.group_sum = None if group is None else group.sum
        if hasattr(layer, "batch_share"):
            layer.batch_share = batch_share


def step_figures(group, model, loss_value, right, weight):
    """The distributed counterpart of ``training.step_figures``: sums every rank's contribution to the
    gradients (written back into ``layer.grads``), the loss (``loss_value * weight``, weight = this rank's
    share of the global batch), the correct count and each ReLU unit's activity, in one Allreduce.
    Returns (global batch loss, {parameter: gradient L2 norm}, {ReLU index: dead fraction}, correct or None)."""
    from ..nn.layers.activations import ReLU
    parameters = list(model.named_parameters())
    relus = [(str(index), layer) for index, layer in enumerate(model.layers) if isinstance(layer, ReLU)]
    head = np.array([float(loss_value) * weight, 0.0 if right is None else float(right)])
    arrays = [head] + [layer.grads[key] for _, layer, key in parameters]
    arrays += [np.any(layer.positive_mask(), axis=0) for _, layer in relus]      # unit active in this share
    summed = group.sum(arrays)
    for (name, layer, key), grad in zip(parameters, summed[1:1 + len(parameters)]):
        layer.grads[key] = grad
    norms = {name: float(np.sqrt(np.sum(np.square(layer.grads[key], dtype=np.float64))))
             for name, layer, key in parameters}
    active = summed[1 + len(parameters):]
    dead = {index: float(np.mean(np.logical_not(units))) for (index, _), units in zip(relus, active)}
    return float(summed[0][0]), norms, dead, (float(summed[0][1]) if right is not None else None)
