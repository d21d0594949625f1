#!/usr/bin/env python3
"""An independent float64 numpy forward pass of a BERT sentence encoder (written for
sentence-transformers' all-MiniLM-L6-v2), for checking stasim's f32 encoder pass
(src/eval/encoder.rs). It shares no code with stasim: the safetensors file is read by hand
(8-byte little-endian header length, a JSON header of {name: {dtype, shape, data_offsets}},
then the raw little-endian data), the text is tokenised by Hugging Face's `tokenizers` from
the model's tokenizer.json (its fixed padding and truncation turned off), and the arithmetic
is numpy's, in float64 (the float32 weights widened exactly).

The model (Hugging Face's BertModel, then sentence-transformers' Pooling(mean), Normalize):
  x = LayerNorm(word[ids] + token_type[0] + position[0..s])
  per layer: q, k, v = x Wq^T + bq, x Wk^T + bk, x Wv^T + bv   (h heads of d / h)
             ctx = softmax(q k^T / sqrt(d / h)) v per head, no mask (one unpadded sentence)
             x = LayerNorm(x + ctx Wo^T + bo)
             x = LayerNorm(x + gelu(x W1^T + b1) W2^T + b2)    gelu(u) = u/2 (1 + erf(u/sqrt 2))
  e = mean over all tokens of x (including [CLS] and [SEP]), divided by its L2 norm
LayerNorm(x) = (x - mean) / sqrt(var + eps) * gamma + beta, eps = config.json's layer_norm_eps.

Usage: minilm_reference.py --model model.safetensors [--tokenizer tokenizer.json]
                           [--config config.json] SENTENCE...
(tokenizer.json and config.json default to the files beside the model.)
Prints one JSON object on stdout: {"ids": [[...], ...], "embeddings": [[...], ...]}.
"""
import argparse
import json
import math
import os
import struct
import sys

# One BLAS thread: a fixed order of summation, and no spinning threads on a busy machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8"}


def read_safetensors(path):
    """Every tensor of the file as a numpy array (float64 for floating point)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] not in DTYPES:
            sys.exit("minilm_reference: %s has dtype %s" % (name, t["dtype"]))
        start, end = t["data_offsets"]
        a = np.frombuffer(data[base + start : base + end], dtype=DTYPES[t["dtype"]])
        a = a.reshape(t["shape"])
        out[name] = a.astype(np.float64) if t["dtype"] != "I64" else a
    return out


_erf = np.vectorize(math.erf)


def layer_norm(x, g, b, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * g + b


def embed(w, ids, heads, eps, layers):
    s = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    x = x + w["embeddings.position_embeddings.weight"][:s]
    x = layer_norm(
        x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps
    )
    d = x.shape[1]
    dh = d // heads
    for layer in range(layers):
        p = "encoder.layer.%d." % layer

        def lin(name, a):
            return a @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q = lin("attention.self.query", x).reshape(s, heads, dh).transpose(1, 0, 2)
        k = lin("attention.self.key", x).reshape(s, heads, dh).transpose(1, 0, 2)
        v = lin("attention.self.value", x).reshape(s, heads, dh).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        scores = scores - scores.max(axis=-1, keepdims=True)
        prob = np.exp(scores)
        prob = prob / prob.sum(axis=-1, keepdims=True)
        ctx = (prob @ v).transpose(1, 0, 2).reshape(s, d)
        x = layer_norm(
            x + lin("attention.output.dense", ctx),
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            eps,
        )
        u = lin("intermediate.dense", x)
        act = 0.5 * u * (1.0 + _erf(u / math.sqrt(2.0)))
        x = layer_norm(
            x + lin("output.dense", act),
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
            eps,
        )
    e = x.mean(axis=0)
    return e / max(np.linalg.norm(e), 1e-12)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokenizer")
    ap.add_argument("--config")
    ap.add_argument("sentences", nargs="+")
    a = ap.parse_args()
    beside = lambda name: os.path.join(os.path.dirname(os.path.abspath(a.model)), name)
    with open(a.config or beside("config.json")) as f:
        cfg = json.load(f)
    tok = Tokenizer.from_file(a.tokenizer or beside("tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    w = read_safetensors(a.model)
    ids = [tok.encode(t).ids for t in a.sentences]
    embs = [
        embed(
            w,
            i,
            cfg["num_attention_heads"],
            cfg["layer_norm_eps"],
            cfg["num_hidden_layers"],
        ).tolist()
        for i in ids
    ]
    json.dump({"ids": ids, "embeddings": embs}, sys.stdout)


main()
