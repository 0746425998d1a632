"""``StreamingDataset``: the Rust loader as a ``torch.utils.data.IterableDataset``;
``StreamingDataLoader``: a ``DataLoader`` for it that can save and resume its
position mid-epoch with any ``num_workers``.

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

Resuming mid-epoch. Every batch carries ``state``: its consumer's resume point
after it. ``DataLoader`` takes batches from its workers round-robin, in order
(``in_order=True``, the default), so the main process knows each worker's
position from the batches it received: ``StreamingDataLoader`` records them
(a plain ``DataLoader`` with ``num_workers=0`` runs the dataset in the main
process, which records them itself), and ``state_dict()`` returns them.
``load_state_dict(state)`` makes the next iteration continue each consumer
from its state, and rotates which ``DataLoader`` worker plays which consumer
so that the round-robin continues where it stopped: the batches after a resume
are, in order, the ones that would have come. ``num_workers`` and the world
size must be those of the saved run; each rank saves its own state (the
consumers of that rank).
"""
import copy
import os

import torch
import torch.utils.data as _data

from . import Loader

__all__ = ["StreamingDataLoader", "StreamingDataset"]

_STATE_VERSION = 1


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
    (``[B, L]`` float32), ``rows``, ``padded``, ``epoch``, ``index``, ``state``
    (the resume point of the batch's consumer after it).

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
        # The resume point the next iteration starts from (load_state_dict), and
        # the consumers' positions seen by the main process in the current one.
        self._resume = None
        self._seen = None
        self._driven = False  # a StreamingDataLoader records the batches

    def set_epoch(self, epoch):
        """The epoch the next iteration streams (its permutation and split). A state
        loaded for this same epoch is kept (a training loop calls ``set_epoch`` after
        ``load_state_dict``); one for another epoch is dropped."""
        epoch = int(epoch)
        if epoch != self.epoch:
            self._seen = None
        self.epoch = epoch
        if self._resume is not None and self._resume["epoch"] != self.epoch:
            self._resume = None

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
        """The ``chess_shards.Loader`` of the calling process for the current epoch,
        positioned at the loaded resume point (if any)."""
        rank, world, worker, workers = self.consumer()
        resume = self._resume
        consumer_state = None
        if resume is not None and resume["consumers"] is not None:
            if resume["workers"] != workers:
                raise ValueError(f"this loader state was saved with {resume['workers']} loader worker(s) per rank; "
                                 f"this DataLoader has {workers} (num_workers=0 and 1 both mean one)")
            # DataLoader asks its workers round-robin from worker 0: the worker asked
            # first plays the consumer whose turn was next when the state was taken.
            worker = (worker + resume["batches"]) % workers
            consumer_state = resume["consumers"][worker]
        threads = self.threads or max(1, (os.cpu_count() or 1) // workers)
        loader = Loader(self.source, epoch=self.epoch, rank=rank, world=world, worker=worker, workers=workers,
                        threads=threads, **self.options)
        if consumer_state is not None:
            loader.load_state_dict(consumer_state)
        return loader

    def _begin(self, workers):
        """In the main process, as an iteration starts: the resume point becomes the
        positions seen so far."""
        resume = self._resume
        if resume is not None and resume["consumers"] is not None:
            self._seen = {"workers": resume["workers"], "consumers": copy.deepcopy(resume["consumers"])}
        else:
            self._seen = {"workers": max(1, workers), "consumers": [None] * max(1, workers)}

    def _observe(self, batch):
        """In the main process: `batch` was handed to the caller."""
        state = batch.get("state") if isinstance(batch, dict) else None
        if state is None or self._seen is None or state["epoch"] != self.epoch:
            return
        consumers = self._seen["consumers"]
        if state["workers"] != len(consumers):
            return
        consumers[state["worker"]] = dict(state)

    def state_dict(self):
        """Where the main process stands in the current epoch: a dict of plain values to
        save with a checkpoint. Needs the batches to pass through the main process's
        dataset: ``StreamingDataLoader`` (any ``num_workers``), a plain ``DataLoader``
        with ``num_workers=0``, or iterating the dataset directly."""
        seen = self._seen
        if seen is None or all(c is None for c in seen["consumers"]):
            if self._resume is not None:
                return copy.deepcopy(self._resume)
            return {"version": _STATE_VERSION, "epoch": self.epoch, "workers": None, "batches": 0, "consumers": None}
        consumers = copy.deepcopy(seen["consumers"])
        return {"version": _STATE_VERSION, "epoch": self.epoch, "workers": seen["workers"],
                "batches": sum(c["batches"] for c in consumers if c is not None), "consumers": consumers}

    def load_state_dict(self, state):
        """Makes the next iteration continue from ``state`` (from ``state_dict()``):
        its batches are the ones that would have come after those already received."""
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise ValueError("not a chess_shards StreamingDataset state (from state_dict())")
        consumers = state.get("consumers")
        if consumers is not None and (not isinstance(consumers, list) or len(consumers) != state.get("workers")):
            raise ValueError("a StreamingDataset state needs one consumer entry per worker")
        self._resume = copy.deepcopy(state)
        self.epoch = int(state["epoch"])
        self._seen = None

    def __iter__(self):
        in_main = _data.get_worker_info() is None
        if in_main and not self._driven:
            self._begin(1)  # iterated in this process, not through StreamingDataLoader
        loader = self.loader()
        if in_main:
            self._resume = None  # used: the next iteration starts fresh unless loaded again
        for batch in loader:
            if in_main:
                self._observe(batch)
            yield _to_torch(batch) if self.as_tensors else batch
        self.last_report = loader.report()


def _as_is(batch):
    """The collate function: batches are already tensors and plain values (the default,
    ``default_convert``, would visit every key and label value in Python)."""
    return batch


class StreamingDataLoader(_data.DataLoader):
    """A ``DataLoader`` over a ``StreamingDataset`` (``batch_size=None``: the dataset
    batches) whose ``state_dict()`` / ``load_state_dict()`` resume mid-epoch with any
    ``num_workers``: it records the state of each batch it hands out. Batches pass
    through as the dataset made them (``collate_fn`` leaves them as they are)."""

    def __init__(self, dataset, **kwargs):
        if not isinstance(dataset, StreamingDataset):
            raise TypeError("StreamingDataLoader needs a chess_shards.torch.StreamingDataset")
        if kwargs.setdefault("batch_size", None) is not None:
            raise ValueError("the StreamingDataset batches itself: leave batch_size=None")
        if kwargs.get("persistent_workers"):
            raise ValueError("persistent workers would not see set_epoch or a loaded state")
        if kwargs.get("in_order") is False:
            raise ValueError("resuming needs batches in worker order (in_order=True)")
        kwargs.setdefault("collate_fn", _as_is)
        super().__init__(dataset, **kwargs)

    def __iter__(self):
        ds = self.dataset
        ds._begin(self.num_workers)
        ds._driven = True
        try:
            it = super().__iter__()
            if self.num_workers > 0:
                # The workers received the dataset (and the state to resume from) as
                # the iterator started them; the main process forgets the loaded state.
                ds._resume = None
            for batch in it:
                ds._observe(batch)
                yield batch
        finally:
            ds._driven = False

    def state_dict(self):
        """The dataset's position after the batches handed out (see ``StreamingDataset.state_dict``)."""
        return self.dataset.state_dict()

    def load_state_dict(self, state):
        self.dataset.load_state_dict(state)
