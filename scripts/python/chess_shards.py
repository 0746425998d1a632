"""Decoder for CheSS shards: wds.WebDataset(urls).decode(chess_shards.decode) yields NumPy arrays."""
import io, numpy as np, zstandard

def decode(key, data):
    """webdataset handler: `<key>.npy.zst` and `<key>.<field>.npy.zst` members become arrays."""
    if key.endswith("npy.zst"):
        return np.load(io.BytesIO(zstandard.ZstdDecompressor().decompress(data)), allow_pickle=False)
    return None  # json and others: webdataset's default handlers
