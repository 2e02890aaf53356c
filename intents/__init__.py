"""Natural-language understanding for madoguchi: intents, entities and language of students' messages."""

from intents.classifier import IntentModel, train
from intents.types import Entity, EntityType, Intent, ItemCode, OutOfScopeKind, Topic, Understanding
from intents.understander import CONFIDENCE_THRESHOLD, Understander, load_understander

__all__ = [
    "CONFIDENCE_THRESHOLD",
    "Entity",
    "EntityType",
    "Intent",
    "IntentModel",
    "ItemCode",
    "OutOfScopeKind",
    "Topic",
    "Understander",
    "Understanding",
    "load_understander",
    "train",
]
