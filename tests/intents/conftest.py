"""Fixtures for the intents tests: one model trained per session, a fixed reference time."""

from datetime import datetime

import pytest

from intents.classifier import IntentModel
from intents.datetimes import TOKYO
from intents.understander import Understander

# Monday 24 November 2025, 10:00 in Tokyo: the reference for every relative date in these tests.
NOW = datetime(2025, 11, 24, 10, 0, tzinfo=TOKYO)


@pytest.fixture(scope="session")
def nlu(nlu_model: IntentModel) -> Understander:
    """An understander over the session's model."""
    return Understander(nlu_model)
