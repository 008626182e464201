"""giftgen: GiFT (Gibbs Fine-Tuning) for code LLMs.

Stages, each a CLI command over Hugging Face datasets: ``seeds`` -> ``chain`` -> ``verify`` -> ``score`` ->
``select`` -> ``finetune`` -> ``eval``. Importing this package is cheap: heavy libraries load inside functions.
"""

__version__ = "0.1.0"
