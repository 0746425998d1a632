"""A large manifest for the manifest-only commands (fractions, balance,
subset), without writing millions of samples: the rows of a small dataset's
manifest repeated until N rows, each copy's keys and patient ids suffixed
(`r000`, `r001`, ...) so they stay unique and patients stay distinct. The
output records the small dataset as its root, so `chess-shards fractions
OUT.parquet ...` runs on it (no shard is read).

    python scripts/bench/big_manifest.py DATASET N OUT.parquet

Used for the 4.8 M-row `fractions` figure in BENCHMARKS.md (DATASET from
`chess-shards demo --count 20000 --size 16 --bit-depth 8 --shard-samples 2000`).
"""
import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    dataset, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    src = os.path.join(dataset, "manifest.parquet")
    t = pq.read_table(src)
    meta = pq.read_schema(src).metadata or {}
    parts, rows, r = [], 0, 0
    while rows < n:
        take = t.slice(0, min(t.num_rows, n - rows))
        suffix = pa.scalar(f"r{r:03d}")
        for name in ("key", "patient_id"):
            i = take.schema.get_field_index(name)
            take = take.set_column(i, take.schema.field(name), pc.binary_join_element_wise(take[name], suffix, ""))
        parts.append(take)
        rows += take.num_rows
        r += 1
    root = os.path.abspath(dataset).encode()
    big = pa.concat_tables(parts).replace_schema_metadata({**meta, b"chess.dataset_root": root})
    pq.write_table(big, out, compression="zstd", row_group_size=65536)
    print(f"{big.num_rows} rows -> {out}")


if __name__ == "__main__":
    main()
