"""CheSS shards from Python: the Rust streaming loader and dataset tools.

- ``Dataset(path_or_url)``: ``len()``, ``keys()``, ``info`` (dataset.json),
  ``manifest`` (a ``pyarrow.Table``), ``sample(i_or_key)`` -> ``(array, metadata)``
  by one byte-range read.
- ``Loader(source, *, seed, epoch, rank, world, workers, worker, batch_size, ...)``:
  batches as dicts of NumPy arrays that own the Rust buffers (no copy), exact
  epochs split over ranks and workers, ``state_dict()`` / ``load_state_dict()``
  for mid-epoch resume, ``report()``.
- ``chess_shards.torch.StreamingDataset``: a ``torch.utils.data.IterableDataset``
  for ``DataLoader(..., num_workers=k)`` under DDP; ``chess_shards.torch.StreamingDataLoader``
  saves and resumes its position mid-epoch with any ``num_workers``.
- ``fractions``, ``balance``, ``subset``: the manifest tools of ``chess-shards``.
- ``decode``: the webdataset decoder (``wds.WebDataset(urls).decode(chess_shards.decode)``).

Errors from the Rust side are ``ChessShardsError`` with the Rust message
(file, shard, member); bad arguments are ``ValueError``.
"""
import os as _os
import tempfile as _tempfile

from ._chess_shards import ChessShardsError, Loader, __version__, balance, fractions, subset
from ._chess_shards import Dataset as _NativeDataset
from .wds import decode

__all__ = ["ChessShardsError", "Dataset", "Loader", "balance", "decode", "fractions", "subset", "__version__"]


class Dataset:
    """A dataset directory, a manifest (``.parquet``) or a URL (``s3://bucket/prefix``, ...)
    opened for random access. ``storage``: object-store settings overriding the
    environment (``endpoint``, ``allow_http``, ``access_key_id``, ``secret_access_key``,
    ``region``); ``root``: the dataset root of a manifest, overriding the recorded one."""

    def __init__(self, path_or_url, *, storage=None, root=None):
        self._native = _NativeDataset(_os.fspath(path_or_url) if not isinstance(path_or_url, str) else path_or_url,
                                      storage=storage, root=root)
        self._manifest = None

    def __len__(self):
        return len(self._native)

    def __repr__(self):
        return repr(self._native)

    @property
    def location(self):
        return self._native.location

    @property
    def root(self):
        """The dataset root the manifest's shard paths are relative to."""
        return self._native.root

    @property
    def info(self):
        """``dataset.json`` as a dict (None for a manifest whose root has none)."""
        return self._native.info

    @property
    def label_names(self):
        return self._native.label_names

    def keys(self):
        """Sample keys in manifest order."""
        return self._native.keys()

    @property
    def manifest(self):
        """The manifest as a ``pyarrow.Table`` (read once)."""
        if self._manifest is None:
            import pyarrow.parquet as pq

            with _tempfile.TemporaryDirectory(prefix="chess-manifest-") as tmp:
                path = _os.path.join(tmp, "manifest.parquet")
                self._native.write_manifest(path)
                self._manifest = pq.read_table(path)
        return self._manifest

    def sample(self, which, *, field=None):
        """``(array, metadata)`` of sample ``which`` (row index or key) by one byte-range
        read; ``field`` (``"target"``, ``"mask"``) returns that extra array instead."""
        return self._native.sample(which, field=field)

    def __getitem__(self, which):
        return self.sample(which)
