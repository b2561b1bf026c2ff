"""Training and fine-tuning DAIN with the recipe of the paper and its reference code."""

from .config import TrainingConfig, TrainingError
from .loop import TrainingResult, train

__all__ = ["TrainingConfig", "TrainingError", "TrainingResult", "train"]
