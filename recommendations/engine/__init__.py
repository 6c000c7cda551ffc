"""Pure-Python recommendation engine (no Django): hybrid recommender and offline evaluation."""

from .errors import EngineError, NotFittedError
from .hybrid import HybridRecommender

__all__ = ["EngineError", "HybridRecommender", "NotFittedError"]
