"""The llamacpp backend's widening of Q5_0 tensors to Q8_0: the same weights, value for value, in another layout."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFWriter
from gguf.quants import dequantize, quantize

from giftgen.backends.widen import GGUFError, q5_0_as_q8_0, read_layout, widened_copy, write_widened


def write_gguf(path, tensors: dict[str, tuple[np.ndarray, T]], alignment: int | None = None) -> None:
    """A GGUF with a tokenizer-like string array and ``tensors`` (name: float values, type to store them as)."""
    writer = GGUFWriter(str(path), "llama")
    writer.add_string("general.name", "tiny")
    writer.add_token_list([f"tok{i}" for i in range(300)])
    writer.add_array("tokenizer.ggml.scores", [float(i) for i in range(300)])
    if alignment:
        writer.add_custom_alignment(alignment)
    for name, (values, kind) in tensors.items():
        data = values if kind == T.F32 else quantize(values, kind)
        writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def values(rows: int, cols: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.05, (rows, cols)).astype(np.float32)


def test_q5_0_blocks_become_q8_0_blocks_of_the_same_values():
    x = values(64, 256, 0)
    x[0, :32] = np.linspace(-1, 1, 32)  # every five-bit value in one block, both ends included
    x[1, :32] = 0.0
    q5 = quantize(x, T.Q5_0)
    q8 = q5_0_as_q8_0(q5.reshape(-1, 22)).reshape(64, -1)
    assert q8.shape == (64, 256 // 32 * 34)
    assert np.array_equal(dequantize(q8, T.Q8_0), dequantize(q5, T.Q5_0))
    assert np.array_equal(q8[:, :2], q5[:, :2])  # the scale as it was
    assert np.abs(dequantize(q8, T.Q8_0) - x).max() > 0  # a real Q5_0 file's rounding, kept, not undone


@pytest.mark.parametrize("alignment", [None, 64])
def test_a_widened_file_holds_the_same_model(tmp_path, alignment):
    source, target = tmp_path / "m.gguf", tmp_path / "w.gguf"
    write_gguf(source, {"token_embd.weight": (values(40, 96, 1), T.Q5_0), "norm.weight": (values(1, 96, 2)[0], T.F32),
                        "blk.0.ffn_down.weight": (values(96, 64, 3), T.Q8_0),
                        "blk.0.ffn_up.weight": (values(64, 96, 4), T.Q5_0), "bias": (values(1, 7, 5)[0], T.F32)},
               alignment)
    write_widened(source, target)
    before, after = GGUFReader(str(source)), GGUFReader(str(target))
    assert [(t.name, t.tensor_type) for t in after.tensors] == [
        ("token_embd.weight", T.Q8_0), ("norm.weight", T.F32), ("blk.0.ffn_down.weight", T.Q8_0),
        ("blk.0.ffn_up.weight", T.Q8_0), ("bias", T.F32)]
    for a, b in zip(before.tensors, after.tensors, strict=True):
        assert list(a.shape) == list(b.shape)
        assert np.array_equal(dequantize(a.data, a.tensor_type), dequantize(b.data, b.tensor_type)), a.name
        assert b.data_offset % (alignment or 32) == 0
    assert {k: v.contents() for k, v in before.fields.items() if not k.startswith("GGUF.")} == \
           {k: v.contents() for k, v in after.fields.items() if not k.startswith("GGUF.")}
    layout = read_layout(target)
    assert layout.alignment == (alignment or 32) and len(layout.tensors) == 5


def test_the_copy_is_made_once_per_file_and_not_for_a_file_without_q5_0(tmp_path):
    source = tmp_path / "m.gguf"
    write_gguf(source, {"w": (values(8, 64, 6), T.Q5_0)})
    cache = tmp_path / "cache"
    copy, count = widened_copy(source, "sha256:abc", cache)
    assert copy == cache / "abc.gguf" and count == 1 and [p.name for p in cache.iterdir()] == ["abc.gguf"]
    made = copy.stat().st_mtime_ns
    assert widened_copy(source, "sha256:abc", cache) == (copy, 1) and copy.stat().st_mtime_ns == made
    plain = tmp_path / "plain.gguf"
    write_gguf(plain, {"w": (values(8, 64, 7), T.Q8_0)})
    assert widened_copy(plain, "sha256:def", cache) is None
    assert [p.name for p in cache.iterdir()] == ["abc.gguf"]


@pytest.mark.parametrize("damage", ["not gguf", "truncated", "cut short"])
def test_a_damaged_file_is_refused_and_leaves_no_copy(tmp_path, damage):
    source = tmp_path / "m.gguf"
    write_gguf(source, {"w": (values(8, 64, 8), T.Q5_0)})
    data = source.read_bytes()
    source.write_bytes({"not gguf": b"GGML" + data[4:], "truncated": data[:200], "cut short": data[:-10]}[damage])
    with pytest.raises(GGUFError, match="not a readable GGUF"):
        widened_copy(source, "sha256:abc", tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
