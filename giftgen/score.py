"""`giftgen score`: perplexity of each code under a model (the student, in distillation)."""

from __future__ import annotations

from giftgen.backends import BackendSettings
from giftgen.config import command_config, setting

@command_config("score")
class ScoreConfig(BackendSettings):
    condition: str = setting("generating", "Condition on the description that generated the code, or the seed one.",
                             choices=("generating", "seed"))
