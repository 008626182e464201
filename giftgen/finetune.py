"""`giftgen finetune`: TRL SFT (full or LoRA) on selected prompt-completion rows."""

from __future__ import annotations

from giftgen.config import command_config, setting

@command_config("finetune")
class FinetuneConfig:
    model: str | None = setting(None, "Model to fine-tune (the student): a Hub id or a local folder.", flag="-m",
                                envvar="GIFTGEN_MODEL")
    output_dir: str = setting("giftgen-model", "Where to save the model, tokenizer and card.")
    learning_rate: float = setting(2e-5, "AdamW learning rate.")
    epochs: float = setting(2.0, "Training epochs.")
