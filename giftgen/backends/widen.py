"""A GGUF's Q5_0 tensors rewritten as Q8_0: the same weights, in a type llama.cpp's AMX kernels multiply.

llama.cpp multiplies Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K and IQ4_XS tensors with AMX's tiles on a processor that
has them; a Q5_0 tensor takes its per-token dot products. A Q5_0 block is a float16 scale ``d`` and 32 five-bit
integers ``q``, holding the values ``d * (q - 16)``; a Q8_0 block with the same ``d`` and the 8-bit integers
``q - 16`` holds exactly those values. So the rewrite changes the layout (22 bytes a block become 34), not one
weight: a widened file is the same model, dequantized value for value (tested). Qwen2.5-Coder-0.5B-Instruct's
Q4_K_M file is 62% Q5_0 by weight (388M of its 630M values: its width, 896, is no multiple of the K-quants' 256,
so llama.cpp's mix falls back to Q5_0); widened, it is 145 MB larger and llama.cpp generates 2.4x faster at the
chain's batch of 16.

``widened_copy`` keeps one copy per source file's sha256 in ``$XDG_CACHE_HOME/giftgen/llamacpp-widened`` (made
once, in 3 s for that file; safe to delete). The GGUF is read with a small parser of its own: the ``gguf``
package's reader takes 14 s on that file's 151,936-token vocabulary.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

WIDENED = {GGMLQuantizationType.Q5_0: GGMLQuantizationType.Q8_0}
_SCALAR_BYTES = {GGUFValueType.UINT8: 1, GGUFValueType.INT8: 1, GGUFValueType.UINT16: 2, GGUFValueType.INT16: 2,
                 GGUFValueType.UINT32: 4, GGUFValueType.INT32: 4, GGUFValueType.FLOAT32: 4, GGUFValueType.BOOL: 1,
                 GGUFValueType.UINT64: 8, GGUFValueType.INT64: 8, GGUFValueType.FLOAT64: 8}
_CHUNK = 1 << 20  # blocks converted at a time


class GGUFError(ValueError):
    pass


@dataclass
class Tensor:
    name: bytes
    dims: tuple[int, ...]
    type: int
    offset: int  # from the start of the data section


@dataclass
class Layout:
    """Where a GGUF's parts are: its metadata ends at ``infos``, its data section starts at ``data``."""

    infos: int
    data: int
    alignment: int
    tensors: list[Tensor]
    sizes: list[int] = field(default_factory=list)  # each tensor's bytes (a widened type's without padding)


def read_layout(path: Path) -> Layout:
    """The tensor table of the GGUF (version 2 or 3) at ``path``, its metadata skipped."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            layout = _parse(buf)
            layout.sizes = _byte_sizes(layout, len(buf))
            return layout
    except (struct.error, ValueError) as e:  # GGUFError is a ValueError, as is mmap's refusal of an empty file
        raise GGUFError(f"{path} is not a readable GGUF file: {e}") from None


def _parse(buf: mmap.mmap) -> Layout:
    if buf[:4] != b"GGUF":
        raise GGUFError("no GGUF magic")
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    if version not in (2, 3):
        raise GGUFError(f"GGUF version {version} (this reader knows 2 and 3)")
    pos, alignment = 24, 32

    def string(pos: int) -> tuple[bytes, int]:
        (n,) = struct.unpack_from("<Q", buf, pos)
        return buf[pos + 8:pos + 8 + n], pos + 8 + n

    def skip(kind: int, pos: int) -> int:
        if kind in _SCALAR_BYTES:
            return pos + _SCALAR_BYTES[kind]
        if kind == GGUFValueType.STRING:
            return pos + 8 + struct.unpack_from("<Q", buf, pos)[0]
        if kind == GGUFValueType.ARRAY:
            item, count = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            if item in _SCALAR_BYTES:
                return pos + count * _SCALAR_BYTES[item]
            for _ in range(count):
                pos = skip(item, pos)
            return pos
        raise GGUFError(f"unknown value type {kind}")

    for _ in range(n_kv):
        key, pos = string(pos)
        (kind,) = struct.unpack_from("<I", buf, pos)
        if key == b"general.alignment" and kind == GGUFValueType.UINT32:
            (alignment,) = struct.unpack_from("<I", buf, pos + 4)
        pos = skip(kind, pos + 4)
    infos, tensors = pos, []
    for _ in range(n_tensors):
        name, pos = string(pos)
        (n_dims,) = struct.unpack_from("<I", buf, pos)
        dims = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
        kind, offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * n_dims)
        tensors.append(Tensor(name, dims, kind, offset))
        pos += 4 + 8 * n_dims + 12
    return Layout(infos, -(-pos // alignment) * alignment, alignment, tensors)


def q5_0_as_q8_0(blocks: np.ndarray) -> np.ndarray:
    """Q5_0 blocks (rows of 22 bytes: d, the 32 high bits, 16 bytes of low nibbles) as Q8_0 blocks (rows of 34
    bytes: the same d, then ``q - 16`` as int8), value for value."""
    high = blocks[:, 2:6].copy().view("<u4")  # bit j: the fifth bit of value j
    low = blocks[:, 6:22]
    j = np.arange(16, dtype=np.uint32)
    first = (low & 0x0F) | (((high >> j) & 1) << 4).astype(np.uint8)  # values 0-15
    second = (low >> 4) | (((high >> (j + 16)) & 1) << 4).astype(np.uint8)  # values 16-31
    values = (np.concatenate([first, second], axis=1).astype(np.int16) - 16).astype(np.int8)
    return np.concatenate([blocks[:, 0:2], values.view(np.uint8)], axis=1)


def widenable(layout: Layout) -> int:
    """How many of the file's tensors ``write_widened`` rewrites."""
    return sum(t.type in WIDENED for t in layout.tensors)


def write_widened(source: Path, target: Path, layout: Layout | None = None) -> None:
    """``source`` with its Q5_0 tensors as Q8_0 at ``target``: its metadata and other tensors byte for byte
    (``layout``: ``source``'s, if read already)."""
    layout = layout or read_layout(source)
    sizes, align = layout.sizes, layout.alignment
    with open(source, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf, open(target, "wb") as out:
        out.write(buf[:layout.infos])
        offset, plan = 0, []
        for tensor, size in zip(layout.tensors, sizes, strict=True):
            kind = WIDENED.get(tensor.type, tensor.type)
            if kind != tensor.type:
                size = size // GGML_QUANT_SIZES[tensor.type][1] * GGML_QUANT_SIZES[kind][1]
            out.write(struct.pack("<Q", len(tensor.name)) + tensor.name + struct.pack("<I", len(tensor.dims))
                      + struct.pack(f"<{len(tensor.dims)}Q", *tensor.dims) + struct.pack("<IQ", kind, offset))
            plan.append((tensor, offset))
            offset += -(-size // align) * align
        out.write(b"\0" * (-out.tell() % align))
        start = out.tell()
        for (tensor, new_offset), size in zip(plan, sizes, strict=True):
            out.write(b"\0" * (start + new_offset - out.tell()))
            _copy(buf, layout.data + tensor.offset, size, tensor.type, out)


def _copy(buf: mmap.mmap, at: int, size: int, kind: int, out) -> None:
    """The tensor of ``size`` bytes at ``at`` written to ``out``, widened if its type is (no view of the map
    outlives the call: the map could not close)."""
    if kind not in WIDENED:
        for b in range(at, at + size, _CHUNK * 32):
            out.write(buf[b:min(b + _CHUNK * 32, at + size)])
        return
    blocks = np.frombuffer(buf, np.uint8, size, at).reshape(-1, GGML_QUANT_SIZES[kind][1])
    for b in range(0, len(blocks), _CHUNK):
        out.write(q5_0_as_q8_0(blocks[b:b + _CHUNK]).tobytes())


def _byte_sizes(layout: Layout, file_size: int) -> list[int]:
    """Each tensor's bytes, from its type and shape (a type this module does not know: up to the next tensor's
    offset, or the end of the file); a tensor the file holds less of than its shape needs is an error."""
    ends = [t.offset for t in layout.tensors[1:]] + [file_size - layout.data]
    sizes = []
    for tensor, end in zip(layout.tensors, ends, strict=True):
        room = end - tensor.offset
        if tensor.type in GGML_QUANT_SIZES:
            per_block, block_bytes = GGML_QUANT_SIZES[tensor.type]
            n = int(np.prod(tensor.dims))
            if n % per_block or n // per_block * block_bytes > room:
                raise GGUFError(f"tensor {tensor.name.decode(errors='replace')} is cut short or not whole blocks")
            room = n // per_block * block_bytes
        elif room < 0:
            raise GGUFError("tensor data missing, or not stored in the order of the tensor infos")
        sizes.append(room)
    return sizes


def widened_copy(source: Path, sha256: str, cache: Path) -> tuple[Path, int] | None:
    """The cached widened copy of ``source`` (sha256 ``sha256``) in ``cache``, written now if missing, and how many
    tensors it widened; None when ``source`` has none to widen."""
    layout = read_layout(source)
    count = widenable(layout)
    if not count:
        return None
    target = cache / f"{sha256.removeprefix('sha256:')}.gguf"
    if target.is_file():
        return target, count
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        write_widened(source, partial, layout)
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return target, count
