"""`giftgen eval`: greedy pass@1 and sampled pass@k of a model on seed rows, through the sandbox."""

from __future__ import annotations

from giftgen.backends import BackendSettings
from giftgen.config import command_config, setting

@command_config("eval")
class EvalConfig(BackendSettings):
    n: int = setting(1, "Samples per problem (1 and temperature 0: greedy pass@1).", flag="-n")
    temperature: float = setting(0.0, "Sampling temperature (0: greedy).")
