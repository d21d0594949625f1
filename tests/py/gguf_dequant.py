#!/usr/bin/env python3
"""Dequantises tensors of a GGUF file with the `gguf` PyPI package's own reader and
dequantiser (gguf.GGUFReader, gguf.quants.dequantize): the independent side of stasim's
dequantisation test (tests/it/gguf.rs).

Usage: gguf_dequant.py FILE OUT_DIR NAME[:ROWS]...
For each NAME writes OUT_DIR/NAME.f32: the values as little-endian float32 in row-major
(PyTorch) order, only the first ROWS rows (outermost dimension) when ROWS is given. Prints one
JSON object on stdout: {NAME: {"shape": [...], "type": "Q4_1", "offset": ..., "n_bytes": ...}}
with the shape written and the tensor's absolute data offset and size in the file.
"""
import json
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, out_dir, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
    reader = GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    result = {}
    for spec in wanted:
        name, _, rows = spec.partition(":")
        t = tensors[name]
        # t.data holds the raw blocks, outermost dimension first (rows of ne[0] elements'
        # blocks), so the first rows are sliced before dequantising; dequantize returns shape
        # (ne[n-1], ..., ne[0]).
        shape = [int(d) for d in reversed(t.shape.tolist())]
        data = t.data
        if rows:
            shape[0] = min(int(rows), shape[0])
            data = data[: shape[0]]
        values = dequantize(data, t.tensor_type).astype(np.float32).reshape(shape)
        values.astype("<f4").tofile(os.path.join(out_dir, name + ".f32"))
        result[name] = {
            "shape": list(values.shape),
            "type": t.tensor_type.name,
            "offset": int(t.data_offset),
            "n_bytes": int(t.n_bytes),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
