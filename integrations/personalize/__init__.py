"""Amazon Personalize behind one adapter: schemas, control-plane calls, batch files."""

from .client import RECIPES, JobStatus, PersonalizeAdapter, RecommendedItem, recipe_arn
from .errors import PersonalizeError

__all__ = [
    "RECIPES",
    "JobStatus",
    "PersonalizeAdapter",
    "PersonalizeError",
    "RecommendedItem",
    "recipe_arn",
]
