"""A message the bot did not understand is stored with its best guess (for the staff dashboard); an
understood message or a button tap is stored without one."""

from sqlalchemy import select

from core.models import TranscriptEntry
from handlers.turn import Channel, IncomingMessage
from intents.types import Intent


def said(core, user):
    with core.transaction() as session:
        return session.execute(select(TranscriptEntry.intent, TranscriptEntry.confidence, TranscriptEntry.guess)
                               .where(TranscriptEntry.conversation_id == f"web:{user}",
                                      TranscriptEntry.direction == "in")).one()


def message(user, **body):
    return IncomingMessage(channel=Channel.WEB, user_id=user, conversation_id=f"web:{user}", **body)


def test_a_message_not_understood_keeps_the_bots_best_guess(core, pipeline_for, understander):
    text = "ぬふぁ なにゅ"
    expected = understander.understand(text, now=core.now())
    assert expected.intent is Intent.OUT_OF_SCOPE and expected.candidates, "the text is one the bot misses"
    pipeline_for(core).handle(message("miss", text=text))
    intent, confidence, guess = said(core, "miss")
    assert intent == "out_of_scope" and guess == expected.candidates[0][0].value
    assert confidence == expected.confidence


def test_an_understood_message_and_a_tap_keep_no_guess(core, pipeline_for):
    pipeline = pipeline_for(core)
    pipeline.handle(message("hit", text="支払い方法を教えて"))
    pipeline.handle(message("tap", payload="intent:contact"))
    assert said(core, "hit")[0] == "payment_methods" and said(core, "hit")[2] is None
    assert said(core, "tap")[0] == "contact" and said(core, "tap")[2] is None


def test_a_question_placed_outside_the_desk_is_kept_with_its_kind_and_no_guess(core, pipeline_for):
    pipeline_for(core).handle(message("campus", text="学食って何時まで開いてますか"))
    intent, _, guess = said(core, "campus")
    assert intent == "out_of_scope/campus" and guess is None
