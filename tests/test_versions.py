"""The library versions every run summary, stage marker and card records."""

from __future__ import annotations


def test_library_versions_are_the_installed_ones():
    from importlib import metadata

    import torch

    from giftgen import __version__
    from giftgen.versions import library_versions, versions_line

    versions = library_versions()
    assert versions["giftgen"] == __version__ and versions["torch"] == torch.__version__
    assert versions["transformers"] == metadata.version("transformers") and versions["trl"] and versions["datasets"]
    assert versions["tokenizers"] == metadata.version("tokenizers")  # the toy's BPE is trained with it
    import platform

    assert versions["cpu"] and versions["cpu"].endswith(platform.machine())  # kernels round differently per CPU
    assert versions_line({"torch": "2.0", "vllm": None}) == "torch 2.0, vllm not installed"
    assert versions_line(None) == "not recorded"
