"""The webdataset decoder: ``wds.WebDataset(urls).decode(chess_shards.decode)``
turns ``<key>.npy.zst`` and ``<key>.<field>.npy.zst`` members into NumPy arrays
(json and others are left to webdataset's default handlers). Needs
``zstandard`` (imported on first use)."""
import io

import numpy as np

_decompressor = None


def decode(key, data):
    """webdataset handler: `<key>.npy.zst` and `<key>.<field>.npy.zst` members become arrays."""
    global _decompressor
    if key.endswith("npy.zst"):
        if _decompressor is None:
            import zstandard

            _decompressor = zstandard.ZstdDecompressor()
        return np.load(io.BytesIO(_decompressor.decompress(data)), allow_pickle=False)
    return None  # json and others: webdataset's default handlers
