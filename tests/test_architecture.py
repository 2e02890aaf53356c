"""The architecture holds: import contracts, explicit registration, and renderers for every reply kind."""

import subprocess
import sys
from pathlib import Path

import pytest

from bot.channels import line_render, slack_render, terminal, web
from bot.wiring import build_handlers
from handlers import basic
from handlers.registry import DuplicateHandler, HandlerRegistry
from handlers.replies import REPLY_KINDS, Card, Link, QuickReply, Text

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    """core imports nothing from the edges; handlers no channel SDK (contracts in pyproject.toml)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_registering_an_intent_twice_fails_at_startup():
    registry = HandlerRegistry()
    basic.register(registry)
    with pytest.raises(DuplicateHandler, match="greet"):
        basic.register(registry)


def test_the_composition_root_builds():
    registry, forms = build_handlers()
    assert registry.intents() and forms.names() >= {"order", "reset", "order_lookup"}


SAMPLES = {
    Text: Text("hello", (QuickReply("A", "intent:contact"),)),
    Link: Link("Pay", "https://example.invalid/pay", "Pay here"),
    Card: Card("Order", (("Total", "¥400"),), "no refunds", (QuickReply("OK", "yes"),)),
}


@pytest.mark.parametrize("render", [web.render, terminal.render, line_render.render, slack_render.render],
                         ids=["web", "terminal", "line", "slack"])
def test_every_channel_renders_every_reply_kind(render):
    assert set(SAMPLES) == set(REPLY_KINDS)
    for kind, reply in SAMPLES.items():
        assert render([reply]), f"{render.__module__} rendered {kind.__name__} as nothing"


@pytest.mark.parametrize("render", [web.render, terminal.render, line_render.render, slack_render.render],
                         ids=["web", "terminal", "line", "slack"])
def test_an_unknown_reply_kind_is_an_error_not_a_silent_drop(render):
    with pytest.raises(TypeError):
        render(["not a reply"])
