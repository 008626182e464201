"""`giftgen chain`: the Gibbs chain of GiFT (and its RFT and RFT+RD baselines) over seed problems."""

from __future__ import annotations

from giftgen.backends import BackendSettings
from giftgen.config import command_config, setting

@command_config("chain")
class ChainConfig(BackendSettings):
    mode: str = setting("gibbs", "gibbs: GiFT's chain; rft: codes from the seed description only; rewrite: RFT+RD.",
                        choices=("gibbs", "rft", "rewrite"))
    steps: int = setting(20, "Chain steps R per problem.", flag="-R")
    n: int = setting(3, "Codes sampled per step.", flag="-n")
    temperature: float = setting(1.0, "Code sampling temperature.")
    top_p: float = setting(1.0, "Code sampling top-p (1.0: off).")
    top_k: int = setting(50, "Code sampling top-k (0: off).")
    max_new_tokens: int = setting(512, "New tokens per code.")
    seed: int = setting(0, "Random seed (sampling, exemplar choice, kept-code choice).")
