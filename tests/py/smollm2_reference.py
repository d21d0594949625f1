#!/usr/bin/env python3
"""An independent float64 numpy forward pass of a Llama-architecture GGUF (written for
SmolLM2-135M-Instruct), for checking stasim's own reference forward pass. It shares no code
with stasim: the file is read and dequantised by the `gguf` PyPI package (gguf.GGUFReader,
gguf.quants.dequantize), the arithmetic is numpy's.

The model, per llama.cpp's `llama` graph:
  x = token_embd[ids]
  per block: h = RMSNorm(x) * attn_norm
             q, k, v = h Wq^T, h Wk^T, h Wv^T         (heads of head_dim = d / heads)
             rotary embedding on q, k over ADJACENT pairs (2i, 2i+1) of each head: llama.cpp's
               converter permutes the Q/K rows of the Hugging Face checkpoint so that its
               "normal" rope (adjacent pairs) equals the HF rotate-half form; the angle of pair
               i at position p is p * freq_base^(-2i / rope_dims)
             grouped-query attention: query head j uses key/value head j // (heads / kv_heads),
               scores q k^T / sqrt(head_dim), causal, softmax, times v
             x = x + attn Wo^T
             h = RMSNorm(x) * ffn_norm
             x = x + (silu(h Wgate^T) * (h Wup^T)) Wdown^T
  logits = (RMSNorm(x) * output_norm) lm_head^T, lm_head = output.weight, else token_embd (tied)
RMSNorm(x) = x / sqrt(mean(x^2) + eps), eps from `{arch}.attention.layer_norm_rms_epsilon`.
Everything is float64 (the dequantised float32 weights widened exactly).

There is no tokenizer: the prompt is a list of token ids. The default, 504,3575,282,4649,314,
is "The capital of France is" in SmolLM2's vocabulary (looked up in the file's
tokenizer.ggml.tokens; no chat template, no BOS).

Usage: smollm2_reference.py [--model FILE] [--ids 1,2,3] [--generate 16] [--top 20]
                            [--logits-out FILE]
Prints one JSON object on stdout:
  {"model": ..., "ids": [...], "logits_last_top": [[id, logit], ...] (the last prompt
   position's top logits, largest first, ties by lower id), "generated": [...] (greedy,
   argmax with ties to the lower id, a KV cache), "generated_margins": [...] (at each step
   the chosen logit minus the runner-up: how far a different implementation's logits may be
   off before the greedy tokens can differ), "prompt_text": ..., "generated_text": ...,
   "hyper": {...}}
--logits-out writes all of the last prompt position's logits as little-endian float64.
"""
import argparse
import json
import os
import sys

# One BLAS thread: OpenBLAS's spinning worker threads are ten times slower on a busy machine,
# and a single thread sums in a fixed order (the output is the same on every run).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from gguf import GGUFReader  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

DEFAULT_MODEL = os.path.expanduser(
    "~/.cache/stasim/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
)
DEFAULT_IDS = "504,3575,282,4649,314"


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        if default is None:
            sys.exit("smollm2_reference: the file has no metadata key %s" % key)
        return default
    return f.contents()


def tensor(tensors, name):
    """The tensor `name` as float64 in row-major (PyTorch) order."""
    t = tensors[name]
    shape = [int(d) for d in reversed(t.shape.tolist())]
    return dequantize(t.data, t.tensor_type).astype(np.float64).reshape(shape)


def byte_decoder():
    """GPT-2's byte-level BPE alphabet, inverted: printable character -> byte."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def detokenize(vocab, ids):
    dec = byte_decoder()
    out = bytearray()
    for i in ids:
        out.extend(dec.get(ch, ord("?")) for ch in vocab[i])
    return out.decode("utf-8", errors="replace")


class Model:
    def __init__(self, path):
        reader = GGUFReader(path)
        arch = field(reader, "general.architecture")
        key = lambda k: "%s.%s" % (arch, k)  # noqa: E731
        self.layers = int(field(reader, key("block_count")))
        self.d = int(field(reader, key("embedding_length")))
        self.heads = int(field(reader, key("attention.head_count")))
        self.kv_heads = int(field(reader, key("attention.head_count_kv"), self.heads))
        self.head_dim = self.d // self.heads
        self.rope_dims = int(field(reader, key("rope.dimension_count"), self.head_dim))
        self.freq_base = float(field(reader, key("rope.freq_base"), 10000.0))
        self.eps = float(field(reader, key("attention.layer_norm_rms_epsilon")))
        self.vocab_tokens = field(reader, "tokenizer.ggml.tokens", [])
        tensors = {t.name: t for t in reader.tensors}
        self.embd = tensor(tensors, "token_embd.weight")
        self.lm_head = (
            tensor(tensors, "output.weight") if "output.weight" in tensors else self.embd
        )
        self.tied = "output.weight" not in tensors
        self.out_norm = tensor(tensors, "output_norm.weight")
        names = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                 "ffn_gate", "ffn_up", "ffn_down"]
        self.blocks = [
            {n: tensor(tensors, "blk.%d.%s.weight" % (i, n)) for n in names}
            for i in range(self.layers)
        ]
        self.hyper = {
            "architecture": arch, "layers": self.layers, "hidden": self.d,
            "ffn": int(field(reader, key("feed_forward_length"))), "heads": self.heads,
            "kv_heads": self.kv_heads, "head_dim": self.head_dim,
            "rope_dims": self.rope_dims, "rope_freq_base": self.freq_base,
            "rms_eps": self.eps, "vocab": int(self.embd.shape[0]), "tied_lm_head": self.tied,
        }

    def rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, positions):
        """x: (T, heads, head_dim); rotates adjacent pairs (2i, 2i+1) of the first rope_dims."""
        half = self.rope_dims // 2
        inv = self.freq_base ** (-2.0 * np.arange(half, dtype=np.float64) / self.rope_dims)
        ang = np.asarray(positions, dtype=np.float64)[:, None] * inv[None, :]  # (T, half)
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        out = x.copy()
        x0 = x[..., 0 : self.rope_dims : 2]
        x1 = x[..., 1 : self.rope_dims : 2]
        out[..., 0 : self.rope_dims : 2] = x0 * cos - x1 * sin
        out[..., 1 : self.rope_dims : 2] = x0 * sin + x1 * cos
        return out

    def forward(self, ids, start, cache):
        """Runs tokens `ids` at positions start.. with the KV cache `cache` (a list per layer
        of [K, V], each (positions, kv_heads, head_dim)); returns the last position's logits."""
        t = len(ids)
        pos = list(range(start, start + t))
        hd, group = self.head_dim, self.heads // self.kv_heads
        x = self.embd[np.asarray(ids)]
        for layer, w in enumerate(self.blocks):
            h = self.rmsnorm(x, w["attn_norm"])
            q = self.rope((h @ w["attn_q"].T).reshape(t, self.heads, hd), pos)
            k = self.rope((h @ w["attn_k"].T).reshape(t, self.kv_heads, hd), pos)
            v = (h @ w["attn_v"].T).reshape(t, self.kv_heads, hd)
            if cache[layer] is None:
                cache[layer] = [k, v]
            else:
                cache[layer] = [np.concatenate([cache[layer][0], k]),
                                np.concatenate([cache[layer][1], v])]
            keys, vals = cache[layer]
            n = keys.shape[0]
            # Query at absolute position start + i sees keys 0 ..= start + i.
            mask = np.arange(n)[None, :] > (start + np.arange(t))[:, None]
            attn = np.empty((t, self.heads, hd))
            for j in range(self.heads):
                s = q[:, j, :] @ keys[:, j // group, :].T / np.sqrt(hd)
                s = np.where(mask, -np.inf, s)
                s = np.exp(s - s.max(axis=-1, keepdims=True))
                s /= s.sum(axis=-1, keepdims=True)
                attn[:, j, :] = s @ vals[:, j // group, :]
            x = x + attn.reshape(t, self.d) @ w["attn_output"].T
            h = self.rmsnorm(x, w["ffn_norm"])
            g = h @ w["ffn_gate"].T
            u = h @ w["ffn_up"].T
            x = x + (g / (1.0 + np.exp(-g)) * u) @ w["ffn_down"].T
        return self.lm_head @ self.rmsnorm(x[-1], self.out_norm)


def argmax(logits):
    return int(np.argmax(logits))  # the first (lowest id) of equal maxima


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--ids", default=DEFAULT_IDS, help="comma-separated token ids")
    ap.add_argument("--generate", type=int, default=16)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--logits-out", help="all last-position logits, little-endian float64")
    a = ap.parse_args()
    ids = [int(s) for s in a.ids.split(",") if s.strip()]
    if not os.path.exists(a.model):
        sys.exit("smollm2_reference: %s not found (run scripts/fetch-smollm2.sh)" % a.model)
    m = Model(a.model)
    vocab = m.embd.shape[0]
    if not ids or any(i < 0 or i >= vocab for i in ids):
        sys.exit("smollm2_reference: token ids must be in 0..%d, got %s" % (vocab - 1, ids))
    cache = [None] * m.layers
    logits = m.forward(ids, 0, cache)
    if a.logits_out:
        logits.astype("<f8").tofile(a.logits_out)
    order = sorted(range(vocab), key=lambda i: (-logits[i], i))[: a.top]
    top = [[i, float(logits[i])] for i in order]
    generated, margins = [], []
    pos = len(ids)
    for step in range(a.generate):
        nxt = argmax(logits)
        generated.append(nxt)
        margins.append(float(logits[nxt] - np.partition(logits, -2)[-2]))
        if step + 1 < a.generate:
            logits = m.forward([nxt], pos, cache)
            pos += 1
    out = {
        "model": os.path.basename(a.model),
        "ids": ids,
        "logits_last_top": top,
        "generated": generated,
        "generated_margins": margins,
        "prompt_text": detokenize(m.vocab_tokens, ids) if m.vocab_tokens else None,
        "generated_text": detokenize(m.vocab_tokens, generated) if m.vocab_tokens else None,
        "hyper": m.hyper,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
