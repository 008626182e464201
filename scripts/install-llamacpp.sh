#!/usr/bin/env bash
# Build and install llama-cpp-python (the llamacpp backend's engine) for this machine's processor, AMX kernels working.
#
#   bash scripts/install-llamacpp.sh [SPEC]     (default: llama-cpp-python==0.3.36, the version giftgen is tested with)
#
# pip builds llama.cpp from source for the host processor (-march=native; 10-15 minutes on 2 cores). On a processor
# with AMX (Intel Xeon 4th generation and later), a build by GCC 12 dies with SIGILL in llama.cpp's AMX matrix kernels:
# GCC 12's <amxtileintrin.h> tells the compiler that _tile_loadconfig reads 8 of the tile configuration's 64 bytes,
# so the tile shapes written before it are dropped. Where the compiler's header has that operand, this script builds
# against a corrected copy (made in a temporary folder; the operand covers the 64 bytes).
#
# The wheel is kept in ${XDG_CACHE_HOME:-~/.cache}/giftgen/wheels, under a name that includes the version, the
# compiler and the processor's flags, so that a second run on the same machine installs it in seconds (pip's own
# cache would hand a wheel built without the corrected header, or for another processor, back). giftgen runs on any
# build: one whose AMX kernels fail runs without llama.cpp's fast weight layouts (found once, in a child process).
set -euo pipefail
python=${PYTHON:-python}
spec=${1:-llama-cpp-python==0.3.36}
cc=${CC:-cc}
header="$("$cc" -print-file-name=include)/amxtileintrin.h"
fixed=""
if [ -f "$header" ] && grep -q 'ldtilecfg.*(const void \*\*)__config' "$header"; then
  fixed=$(mktemp -d)
  trap 'rm -rf "$fixed"' EXIT
  sed 's|(\*((const void \*\*)__config))|(*((const char (*)[64])__config))|' "$header" > "$fixed/amxtileintrin.h"
  if ! grep -q 'ldtilecfg.*const char (\*)\[64\]' "$fixed/amxtileintrin.h"; then
    echo "could not correct $header" >&2
    exit 1
  fi
  echo "building with a corrected copy of $header" >&2
fi
key=$(printf '%s\n' "$spec" "$("$cc" --version | head -1)" "${fixed:+corrected header}" "${CMAKE_ARGS:-}" \
  "$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m)" | sha256sum | cut -c1-16)
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/giftgen/wheels/llama-cpp-python-$key"
if ! ls "$wheels"/llama_cpp_python-*.whl > /dev/null 2>&1; then
  args=${CMAKE_ARGS:-}
  [ -n "$fixed" ] && args="$args -DCMAKE_C_FLAGS=-I$fixed -DCMAKE_CXX_FLAGS=-I$fixed"
  mkdir -p "$wheels.part"
  CMAKE_ARGS="$args" "$python" -m pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
    -w "$wheels.part" "$spec" >&2
  rm -rf "$wheels"
  mv "$wheels.part" "$wheels"
fi
"$python" -m pip install -q --no-deps --force-reinstall "$wheels"/llama_cpp_python-*.whl
# llama-cpp-python's own requirements (numpy, jinja2, diskcache, typing-extensions), from the wheel's metadata
"$python" -m pip install -q "$(ls "$wheels"/llama_cpp_python-*.whl)"
