"""``StreamingDataset``: the Rust loader as a ``torch.utils.data.IterableDataset``.

Each ``__iter__`` (in the main process, or in each ``DataLoader`` worker) opens
a loader for consumer ``rank * workers + worker``: rank and world come from
``torch.distributed`` (when initialised; else 0 and 1, or the ``rank`` /
``world`` given), the worker index and count from ``get_worker_info()``. So a
plain ``DataLoader(ds, batch_size=None, num_workers=k)`` under DDP delivers
every sample exactly once per epoch (``remainder="drop"`` leaves out the last
``N mod (world*k)`` samples of the epoch's order; ``"pad"`` repeats a few
instead). The dataset yields whole batches (the Rust loader batches), hence
``batch_size=None``. Call ``set_epoch(e)`` before each epoch, as with
``DistributedSampler``; keep ``persistent_workers=False`` (the default) so that
the workers see it.
"""
import os

import torch
import torch.utils.data as _data

from . import Loader

__all__ = ["StreamingDataset"]


def _to_torch(batch):
    out = {}
    for name, value in batch.items():
        if hasattr(value, "__array_interface__"):
            out[name] = torch.from_numpy(value)  # shares the Rust buffer
        else:
            out[name] = value
    return out


class StreamingDataset(_data.IterableDataset):
    """Batches of ``batch_size`` as dicts: ``image`` (``[B, H, W]`` uint16/uint8 tensor),
    extra ``fields``, ``keys``, ``labels`` (name -> list), ``label_array``
    (``[B, L]`` float32), ``rows``, ``padded``, ``epoch``, ``index``.

    ``threads``: decode threads of each loader (default: the CPUs divided among
    the workers). Other arguments as ``chess_shards.Loader``."""

    def __init__(self, source, *, batch_size=64, seed=0, shuffle=True, shuffle_buffer=512, remainder="drop",
                 fields=None, threads=None, prefetch=4, access="auto", verify_hashes=False, root=None,
                 storage=None, rank=None, world=None, as_tensors=True):
        super().__init__()
        self.source = os.fspath(source) if not isinstance(source, str) else source
        self.options = dict(batch_size=batch_size, seed=seed, shuffle=shuffle, shuffle_buffer=shuffle_buffer,
                            remainder=remainder, fields=list(fields) if fields else None, prefetch=prefetch,
                            access=access, verify_hashes=verify_hashes, root=root, storage=storage)
        self.threads = threads
        self.rank, self.world = rank, world
        self.as_tensors = as_tensors
        self.epoch = 0
        self.last_report = None

    def set_epoch(self, epoch):
        """The epoch the next iteration streams (its permutation and split)."""
        self.epoch = int(epoch)

    def consumer(self):
        """``(rank, world, worker, workers)`` of the calling process."""
        rank, world = self.rank, self.world
        if rank is None or world is None:
            dist = torch.distributed
            if dist.is_available() and dist.is_initialized():
                rank, world = dist.get_rank(), dist.get_world_size()
            else:
                rank, world = 0, 1
        info = _data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank, world, worker, workers

    def loader(self):
        """The ``chess_shards.Loader`` of the calling process for the current epoch."""
        rank, world, worker, workers = self.consumer()
        threads = self.threads or max(1, (os.cpu_count() or 1) // workers)
        return Loader(self.source, epoch=self.epoch, rank=rank, world=world, worker=worker, workers=workers,
                      threads=threads, **self.options)

    def __iter__(self):
        loader = self.loader()
        for batch in loader:
            yield _to_torch(batch) if self.as_tensors else batch
        self.last_report = loader.report()
