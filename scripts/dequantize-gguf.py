#!/usr/bin/env python3
"""Write a GGUF file's F32 dequantization: every tensor as float32, the metadata (tokenizer, chat template) kept.

    python scripts/dequantize-gguf.py SmolLM2-135M-Instruct.Q4_1.gguf SmolLM2-135M-Instruct.F32.gguf

The values are what transformers loads from the original file (both dequantize each block as ``d * q + m`` in
float32; checked on SmolLM2-135M-Instruct Q4_1: 0 of its 134,515,008 values differ from the ``gguf`` package's
dequantization), so the F32 file is the same model, 5.5x larger. llama.cpp (the ``llamacpp`` backend) multiplies
float32 weights with its tiled GEMMs, which read prompts several times faster than its Q4_1 dot products on a
CPU (docs/speed.md). Uses llama.cpp's own quantizer (``llama-cpp-python``, the ``llamacpp`` extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="a GGUF file")
    ap.add_argument("target", type=Path, help="the F32 GGUF to write")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if not args.source.is_file():
        print(f"no such file: {args.source}", file=sys.stderr)
        return 2
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_ALL_F32
    params.allow_requantize = True  # a quantized source is dequantized, not refused
    params.pure = True  # every tensor F32, none kept at another type
    params.nthread = args.threads
    rc = llama_cpp.llama_model_quantize(str(args.source).encode(), str(args.target).encode(), params)
    if rc != 0:
        print(f"llama.cpp could not convert {args.source} ({rc})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
