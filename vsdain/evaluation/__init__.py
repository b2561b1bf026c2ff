"""Scoring interpolated frames against ground truth: data layouts, metrics, reports."""

from .datasets import LAYOUTS, DatasetError, Triplet, find_triplets, read_rgb, read_triplet
from .metrics import Scores, interpolation_error, psnr, score, ssim
from .run import METHODS, Evaluation, average_frames, dain_method, evaluate

__all__ = [
    "LAYOUTS",
    "METHODS",
    "DatasetError",
    "Evaluation",
    "Scores",
    "Triplet",
    "average_frames",
    "dain_method",
    "evaluate",
    "find_triplets",
    "interpolation_error",
    "psnr",
    "read_rgb",
    "read_triplet",
    "score",
    "ssim",
]
