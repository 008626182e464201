"""`giftgen select`: perplexity-weighted draw of K codes per problem; writes TRL prompt-completion rows."""

from __future__ import annotations

from giftgen.config import command_config, setting

@command_config("select")
class SelectConfig:
    temperature: float = setting(2.0, "T in softmax(T * PPL): > 0 favours the tail, < 0 the head, 0 is uniform.", flag="-T")
    k: int = setting(8, "Codes drawn per problem.", flag="-k")
    seed: int = setting(0, "Seed of the draw.")
