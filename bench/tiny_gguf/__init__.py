"""Write a tiny, valid, random-weight llama-architecture GGUF model.

Standard library only (no numpy, no gguf package). The file loads in llama.cpp
(``llama-server -m tiny.gguf``) and generates thousands of tokens/s on a CPU. The output is
word salad drawn from a small built-in English word list, e.g. " proxy model the swap ...".

How the gibberish is kept readable and tests predictable:

* Residual-stream channel 0 carries a constant (the embedding sets it, no layer writes to it),
  so after the final RMSNorm it is a large positive number. Column 0 of ``output.weight`` is
  then a per-token logit bias: control tokens (EOS included), byte tokens, single characters
  and word prefixes get a big negative bias, so generation emits whole words only and never
  stops on its own: completions end with finish_reason "length" after exactly max_tokens.
* ``--say WORD`` gives one token a big positive bias: the model answers WORD WORD WORD ...,
  which tells models apart in proxy tests. ``--say '<|im_end|>'`` makes every completion stop
  at once (finish_reason "stop").
* The same arguments and ``--seed`` give a byte-identical file.

Tokenizer: a SentencePiece-style ("llama") vocabulary built here: <unk>, <s>, </s>,
<|im_start|>, <|im_end|>, the 256 byte-fallback tokens, printable ASCII characters, and
"▁word" tokens with all their prefixes (so text tokenizes into words), plus a ChatML chat
template. ``--vocab-from FILE.gguf`` copies another GGUF's ``tokenizer.*`` keys instead.

Usage::

    python -m swapgate.bench.tiny_gguf tiny.gguf [--layers 2] [--hidden 64] [--heads 4]
        [--kv-heads 4] [--ff 128] [--ctx 4096] [--seed 0] [--name tiny]
        [--say WORD] [--f16] [--vocab-from vocab.gguf]

This package imports nothing outside the standard library.
"""

from swapgate.bench.tiny_gguf.model import main

__all__ = ["main"]
