"""Host-resident batches copied to an accelerator one step ahead, on a side stream.

When a dataset's arrays do not fit on the GPU (:meth:`MultimodalDataset.on_device` leaves them on
the host), each batch is gathered on the host in its stored dtype (uint8 frames, float16
spectrograms), pinned, and copied and converted to float32 model input on a second stream, while
the first stream still computes the step before. The consumer's stream waits for the copy's event
before it touches the batch, and every tensor is marked as used by that stream
(``Tensor.record_stream``) so the caching allocator does not hand its memory to the next copy while
the step still reads it. The design is NVIDIA Apex's ``data_prefetcher``
(``examples/imagenet/main_amp.py``, l. 265 at 5b5d410: ``preload`` copies and normalises the next
batch inside ``torch.cuda.stream(self.stream)``; ``next`` calls ``wait_stream``, then
``record_stream``), with one difference: the consumer waits for an event recorded after each
batch's copy rather than for everything queued on the side stream.

One batch is always in flight: batch k + 1 is gathered and its copy enqueued before batch k is
handed over, so a caller that takes only the first batch (``next(...)``) has paid for two gathers.

On the CPU the streams are PyTorch's no-op stand-ins (``torch.cpu.Stream``), so the same order of
gathers and hand-overs runs, and is tested, on any machine; the data path uses this module only for
an accelerator.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Iterator, TypeVar

import torch
from torch import Tensor

Batch = TypeVar("Batch")  # a mmlib.data.base.Batch; not imported, since mmlib.data.base imports this module


def prefetched(host_batches: Iterable[Batch], device: torch.device | str,
               convert: Callable[[Tensor], Tensor] = Tensor.float) -> Iterator[Batch]:
    """``host_batches`` on ``device``, each input passed through ``convert`` there; one batch ahead.

    ``host_batches`` hold CPU tensors in their stored dtype; labels and indices travel unconverted.
    """
    device = torch.device(device)
    streams = torch.get_device_module(device)
    side = torch.cuda.Stream(device) if device.type == "cuda" else streams.Stream()
    pending = None
    for batch in host_batches:
        with streams.stream(side):
            moved = dataclasses.replace(batch, inputs={m: convert(_copy(x, device)) for m, x in batch.inputs.items()},
                                        labels=_copy(batch.labels, device),
                                        index=None if batch.index is None else _copy(batch.index, device))
            copied = side.record_event()
        if pending is not None:
            yield _hand_over(*pending, streams)
        pending = moved, copied
    if pending is not None:
        yield _hand_over(*pending, streams)


def _copy(tensor: Tensor, device: torch.device) -> Tensor:
    """A host tensor on ``device``: through pinned memory, without waiting, to an accelerator."""
    if device.type == "cpu":
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)


def _hand_over(batch: Batch, copied, streams) -> Batch:
    """``batch`` once the consumer's stream has waited for its copy, its memory held for that stream."""
    consumer = streams.current_stream()
    consumer.wait_event(copied)
    for tensor in (*batch.inputs.values(), batch.labels, batch.index):
        if tensor is not None and tensor.device.type == "cuda":
            tensor.record_stream(consumer)
    return batch
