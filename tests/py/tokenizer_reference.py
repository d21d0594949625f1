"""Independent reference token ids for tests/it/tokenizer.rs, from Hugging Face's `tokenizers`.

stdin: JSON {"model": "smollm2" | "minilm", "path": FILE, "texts": [TEXT, ...]}
stdout: JSON {"ids": [[ID, ...], ...], "decoded": [TEXT, ...]}

smollm2: FILE is the GGUF; its `tokenizer.ggml.tokens` and `tokenizer.ggml.merges` are read
with the `gguf` package and given to `tokenizers`' BPE model, with SmolLM2's pre-tokeniser
(Digits(individual_digits) then ByteLevel without a prefix space) and the ByteLevel decoder;
no special tokens (their text is plain text). minilm: FILE is MiniLM's tokenizer.json, loaded
as it is, with its fixed padding and truncation turned off; `[CLS]`/`[SEP]` added.
"""

import json
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers


def smollm2(path):
    from gguf import GGUFReader

    r = GGUFReader(path)
    pre = r.fields["tokenizer.ggml.pre"].contents()
    if pre != "smollm":
        sys.exit("tokenizer_reference: pre-tokeniser %r, expected 'smollm'" % pre)
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    merges = [tuple(m.split(" ", 1)) for m in r.fields["tokenizer.ggml.merges"].contents()]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok, False


def minilm(path):
    tok = Tokenizer.from_file(path)
    tok.no_padding()
    tok.no_truncation()
    return tok, True


def main():
    req = json.load(sys.stdin)
    tok, special = {"smollm2": smollm2, "minilm": minilm}[req["model"]](req["path"])
    ids = [tok.encode(t, add_special_tokens=special).ids for t in req["texts"]]
    decoded = [tok.decode(i) for i in ids]
    json.dump({"ids": ids, "decoded": decoded}, sys.stdout)


main()
