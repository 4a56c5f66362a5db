"""One run on several processes under ``torchrun``: the process group, batch shards, gradient averaging.

``torchrun --nproc_per_node N -m mmlib train ...`` (or :func:`mmlib.train.train` in a process
whose environment names a process group: ``WORLD_SIZE`` > 1, ``RANK``, ``MASTER_ADDR``...) trains
ONE run with N processes. :func:`init_world` joins the group (NCCL on CUDA, one GPU per process
by ``LOCAL_RANK``; gloo on the CPU) and returns the :class:`World` the loop passes down; a run in
one process gets a :class:`LocalWorld`, whose collectives are the identity, so the loop has one path.

The global batch. Every rank draws the same shuffled order (same seed, same generator), so all
ranks agree on each global batch of ``batch_size`` samples; rank r takes the contiguous slice
:func:`shard_bounds` of it (sizes differ by at most one, :func:`shard_sizes`). Each rank's loss is
scaled by its share ``n_r / n`` of the global batch and the gradients are summed over ranks
(:meth:`World.average_gradients`): the gradient of the global batch's mean loss, which is DDP's
average when the shards are equal, and still exact when the last batch splits unevenly.

Why not ``DistributedDataParallel``. DDP hooks the gradient reduction into ``forward`` of the
wrapped module, but the methods' losses call their submodules directly (MLA and Ours train one
encoder per step, CRMT estimates without a loss) and modify gradients between ``backward`` and
the optimizer step. So the loop calls :meth:`World.average_gradients` after ``loss.backward()``
and BEFORE ``Method.after_backward``: a flattened all-reduce per bucket of the gradients that
exist (a parameter a step does not reach has ``grad`` None on every rank: every rank runs the same
code on its shard). That is the reduction DDP performs, without its overlap of communication and
backward; gradient surgery then sees the global batch's gradient on every rank.

Batch statistics. While a rank steps on its shard, :meth:`World.step` holds the global batch size,
so a method can make a statistic of the whole batch: :meth:`World.batch_mean` (a mean over
samples: each rank's mean weighted by its share, summed), :meth:`World.all_reduce` (a sum),
:meth:`World.gather` (the batch's rows from every rank, differentiable: the gradient of every
rank's loss flows back to the rank that computed the rows). Dropout draws the mask of the whole
global batch from the (identically seeded) torch generator and keeps its own rows
(:class:`ShardedDropout`), so on the CPU the masks are bitwise those one process draws.

BatchNorm. On CUDA encoders' BatchNorm layers become ``SyncBatchNorm`` (statistics of the global
batch). ``SyncBatchNorm`` has no CPU path (it raises for CPU input), so on the CPU BatchNorm
normalises with its shard's statistics (as DDP without ``SyncBatchNorm``) and the running
statistics are averaged over ranks after every optimizer step (:meth:`World.average_buffers`),
which keeps every rank's model identical; such runs differ from one process beyond rounding.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterable, Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn

BUCKET_BYTES = 25 * 2**20  # DDP's default bucket size
# what gloo's error says when the rank at the other end of a collective has ended (killed, crashed)
PEER_LOST = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "Connection refused")
STOPPED = "the run is stopped and no record is stored; rerun it (with --resume to continue from its last checkpoint)"


@contextlib.contextmanager
def _stop_on_sigterm(world: "World") -> Iterator[None]:
    """While the block runs in the main thread, SIGTERM (torchrun stopping its processes because one
    ended or because it was interrupted itself) raises one ``ConnectionError`` that says so."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stopped(signum, frame):
        raise ConnectionError(f"rank {world.rank} of {world.size}: stopped by torchrun (SIGTERM), which stops every "
                              f"rank when one ends or when it is interrupted itself; {STOPPED}")

    previous = signal.signal(signal.SIGTERM, stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def requested_world_size() -> int:
    """``WORLD_SIZE`` from the environment (``torchrun`` sets it), 1 when unset; a clear error when not a number."""
    text = os.environ.get("WORLD_SIZE", "1")
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"WORLD_SIZE must be a positive whole number of processes, got {text!r}")
    return int(text)


def is_main_process() -> bool:
    """Whether this process reports for the run: the only one, or rank 0 of the process group it joined."""
    return not dist.is_initialized() or dist.get_rank() == 0


def shard_sizes(n: int, parts: int) -> list[int]:
    """Sizes of ``parts`` contiguous shards of ``n`` samples: the first ``n % parts`` one larger."""
    base, extra = divmod(n, parts)
    return [base + (r < extra) for r in range(parts)]


def shard_bounds(n: int, rank: int, parts: int) -> slice:
    """Rows of a batch of ``n`` samples that rank ``rank`` of ``parts`` takes (:func:`shard_sizes`)."""
    sizes = shard_sizes(n, parts)
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


class World:
    """This process's place in the run: ``rank`` of ``size`` processes, training on ``device``."""

    def __init__(self, rank: int, size: int, device: torch.device) -> None:
        self.rank, self.size, self.device = rank, size, device
        self._batch: int | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes records, checkpoints and progress bars."""
        return self.rank == 0

    @contextlib.contextmanager
    def peer_loss_named(self) -> Iterator[None]:
        """Inside the block, losing another rank ends this one with one ``ConnectionError`` line.

        Two ways, whichever comes first. A collective fails because the other rank ended (gloo: its
        connection reset or closed, at once when the rank is killed): the line names that rank, the
        other one of two, else torchrun's "Root Cause" does. Or torchrun, which watches its processes,
        sends this one SIGTERM first: the line says so. (NCCL instead waits for its timeout.) Which of
        the two wins is a race between gloo and torchrun's monitor, and it differs between machines.
        Nothing is stored either way; the last checkpoint stays whole (it is replaced atomically).
        """
        stop = _stop_on_sigterm(self) if self.size > 1 else contextlib.nullcontext()
        try:
            with stop:
                yield
        except RuntimeError as error:
            cause = next((p for p in PEER_LOST if p in str(error)), None)
            if cause is None:
                raise
            other = f"rank {1 - self.rank}" if self.size == 2 else "another rank (torchrun's Root Cause names it)"
            raise ConnectionError(f"rank {self.rank} of {self.size}: {other} ended mid-run (gloo: {cause.lower()}); "
                                  f"{STOPPED}") from None

    # ---- the batch being stepped on --------------------------------------------------------------
    @contextlib.contextmanager
    def step(self, batch_size: int) -> Iterator[None]:
        """While the block runs, this rank steps on its shard of a global batch of ``batch_size`` samples."""
        self._batch = batch_size
        try:
            yield
        finally:
            self._batch = None

    @property
    def batch(self) -> int | None:
        """The global batch size inside :meth:`step`, else None."""
        return self._batch

    def rows(self) -> slice:
        """This rank's rows of the current global batch."""
        return shard_bounds(self._require_batch(), self.rank, self.size)

    def share(self) -> float:
        """This rank's share ``n_r / n`` of the current global batch."""
        rows = self.rows()
        return (rows.stop - rows.start) / self._require_batch()

    def _require_batch(self) -> int:
        if self._batch is None:
            raise RuntimeError("a batch statistic was asked for outside World.step (no global batch is being stepped "
                               "on)")
        return self._batch

    # ---- collectives ----------------------------------------------------------------------------------
    def all_reduce(self, tensor: Tensor) -> Tensor:
        """The sum over ranks of ``tensor`` (a new tensor; ``tensor`` is left as it is)."""
        out = tensor.detach().clone()
        dist.all_reduce(out)
        return out

    def batch_mean(self, local_mean: Tensor) -> Tensor:
        """The mean over the global batch of a per-sample quantity, from this shard's mean ``local_mean``."""
        return self.all_reduce(local_mean.detach() * self.share())

    def gather(self, tensor: Tensor) -> Tensor:
        """The global batch's rows ``(n, ...)`` from this shard's rows ``(n_r, ...)``; differentiable."""
        return _GatherShards.apply(self, tensor)

    def gather_rows(self, tensor: Tensor) -> Tensor:
        """Every rank's ``tensor`` ``(n_r, ...)`` concatenated in rank order (sizes may differ); no gradient."""
        sizes = [torch.zeros((), dtype=torch.long, device=tensor.device) for _ in range(self.size)]
        dist.all_gather(sizes, torch.tensor(len(tensor), device=tensor.device))
        sizes = [int(s) for s in sizes]
        return _gather_padded(tensor.detach(), sizes)

    def broadcast_object(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        dist.barrier()

    @torch.no_grad()
    def average_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        """Sum every existing gradient over ranks, in flattened buckets of at most :data:`BUCKET_BYTES`.

        Each rank's loss was scaled by its share of the global batch, so the sum is the gradient of
        the global batch's mean loss. Parameters whose ``grad`` is None (on every rank alike) are skipped.
        """
        grads = [p.grad for p in parameters if p.grad is not None]
        by_kind: dict[tuple, list[Tensor]] = {}
        for g in grads:
            by_kind.setdefault((g.dtype, g.device), []).append(g)
        for group in by_kind.values():
            bucket, size = [], 0
            for g in group:
                bucket.append(g)
                size += g.numel() * g.element_size()
                if size >= BUCKET_BYTES:
                    _all_reduce_flat(bucket)
                    bucket, size = [], 0
            if bucket:
                _all_reduce_flat(bucket)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """``model`` ready to train on this world: the method's own preparation (``Method.distribute``,
        or its refusal), dropout drawn for the global batch (:class:`ShardedDropout`), and SyncBatchNorm
        on CUDA (it has no CPU path)."""
        model.distribute(self)
        shard_dropout(model, self)
        if self.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    @torch.no_grad()
    def average_buffers(self, model: nn.Module) -> None:
        """The mean over ranks of every BatchNorm running statistic (the CPU path, without SyncBatchNorm)."""
        buffers = [b for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                   for b in (m.running_mean, m.running_var) if b is not None]
        if buffers:
            _all_reduce_flat(buffers, scale=1.0 / self.size)


class LocalWorld(World):
    """The one process of a run started without ``torchrun``: rank 0 of 1, whose collectives are the
    identity and whose model needs no preparation, so the loop and the evaluation take one path for one
    process and for several; every number is bitwise what one process computes (a shard is the whole
    batch, its share 1, a sum over one rank the value itself)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        super().__init__(0, 1, torch.device(device))

    def all_reduce(self, tensor: Tensor) -> Tensor:
        return tensor.detach().clone()

    def gather(self, tensor: Tensor) -> Tensor:
        return tensor

    def gather_rows(self, tensor: Tensor) -> Tensor:
        return tensor.detach()

    def broadcast_object(self, value: Any) -> Any:
        return value

    def barrier(self) -> None:
        pass

    def average_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        pass

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model

    def average_buffers(self, model: nn.Module) -> None:
        pass


ONE_PROCESS = LocalWorld()  # the default world of evaluation called outside the loop (its device is not used)


def _all_reduce_flat(tensors: list[Tensor], scale: float = 1.0) -> None:
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    if scale != 1.0:
        flat.mul_(scale)
    for t, part in zip(tensors, flat.split([t.numel() for t in tensors])):
        t.copy_(part.view_as(t))


def _gather_padded(tensor: Tensor, sizes: list[int]) -> Tensor:
    """All-gather tensors of ``sizes[r]`` rows (padded to the largest), concatenated without the padding."""
    largest = max(sizes)
    padded = tensor.new_zeros((largest, *tensor.shape[1:]))
    padded[: len(tensor)] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


class _GatherShards(torch.autograd.Function):
    """Forward: the global batch from every rank's shard. Backward: the sum over ranks of the gradient
    with respect to the global batch, this rank's rows of it (each rank's loss reaches every row)."""

    @staticmethod
    def forward(ctx, world: World, tensor: Tensor) -> Tensor:
        sizes = shard_sizes(world._require_batch(), world.size)
        if len(tensor) != sizes[world.rank]:
            raise ValueError(f"rank {world.rank} gathers {len(tensor)} rows, but its shard of the batch of "
                             f"{world.batch} has {sizes[world.rank]}")
        ctx.rows = shard_bounds(world.batch, world.rank, world.size)
        return _gather_padded(tensor.detach(), sizes)

    @staticmethod
    def backward(ctx, grad: Tensor):
        total = grad.contiguous().clone()
        dist.all_reduce(total)
        return None, total[ctx.rows]


class ShardedDropout(nn.Dropout):
    """Dropout whose mask is drawn for the whole global batch and sliced to this rank's rows.

    Every rank's torch generator is seeded alike, so each rank draws the same ``(n, ...)`` mask and
    keeps its own rows: on the CPU exactly the mask one process draws for the batch (``bernoulli_``
    then division by ``1 - p``, as :func:`torch.nn.functional.dropout`), and never the same mask for
    the rows of two ranks. Outside :meth:`World.step` (or in eval mode) it is plain dropout.
    """

    def __init__(self, p: float, world: World) -> None:
        super().__init__(p)
        self.world = world

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or self.world.batch is None:
            return super().forward(x)
        if self.p == 1.0:
            return x * 0.0
        mask = torch.empty((self.world.batch, *x.shape[1:]), dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return x * mask.div_(1.0 - self.p)[self.world.rows()]


def shard_dropout(model: nn.Module, world: World) -> None:
    """Replace every ``nn.Dropout`` in ``model`` by :class:`ShardedDropout` (same ``p``; no state to keep)."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Dropout:
                setattr(module, name, ShardedDropout(child.p, world))


def init_world(device: torch.device) -> World:
    """The :class:`World` of this process: joining the process group when ``WORLD_SIZE`` > 1, else a
    :class:`LocalWorld` on ``device``.

    CUDA: NCCL, and the process trains on ``cuda:LOCAL_RANK``. CPU: gloo.
    """
    size = requested_world_size()
    if size == 1:
        return LocalWorld(device)
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing and not dist.is_initialized():
        raise ValueError(f"WORLD_SIZE={size} but {', '.join(missing)} unset: start several processes with "
                         "torchrun --nproc_per_node N -m mmlib train ..., or unset WORLD_SIZE for one process")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if dist.get_world_size() != size:
        raise ValueError(f"WORLD_SIZE={size} but the process group has {dist.get_world_size()} processes")
    return World(dist.get_rank(), size, device)
