"""`giftgen verify`: run each row's `code` against its problem's tests in the sandbox; add the verdict."""

from __future__ import annotations

from giftgen.config import command_config, setting

@command_config("verify")
class VerifyConfig:
    workers: int = setting(0, "Parallel sandbox workers (0: one per CPU core).")
    keep: str = setting("all", "Rows to write: all, or only those that passed.", choices=("all", "passed"))
