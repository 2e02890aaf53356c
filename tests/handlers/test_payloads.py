"""Button payloads: every kind round-trips through encode and decode, and its text on the wire never changes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.enums import Language
from core.handoffs import Reason
from handlers.payloads import (
    AskIntent,
    AskPerson,
    CancelForm,
    CancelUnpaid,
    ChangeSlot,
    LinkAccount,
    Namespace,
    Payload,
    RateHandoff,
    Rating,
    ResumeForm,
    SetSlot,
    ShowSymptom,
    SignedIn,
    StartForm,
    StopWaiting,
    SwitchLanguage,
    Symptom,
    UnlinkAccount,
    decode,
    encode,
    namespace_of,
    topic_of,
)
from intents.types import Intent

# What buttons already sent carry (LINE postback data, Slack action values, stored offers and inbox events).
WIRE = [
    (AskIntent(Intent.PAYMENT_METHODS), "intent:payment_methods"),
    (AskIntent(Intent.GREET), "intent:greet"),
    (StartForm("reset"), "form:start:reset"),
    (SetSlot("copies", "2"), "form:set:copies:2"),
    (SetSlot("lookup", "K7PM-3QXA"), "form:set:lookup:K7PM-3QXA"),
    (ChangeSlot("delivery"), "form:change:delivery"),
    (CancelForm(), "form:cancel"),
    (ResumeForm(), "form:resume"),
    (ShowSymptom(Symptom.FIRST), "login:first"),
    (ShowSymptom(Symptom.SECOND_PASSWORD), "login:second_password"),
    (SwitchLanguage(Language.EN), "lang:en"),
    (SwitchLanguage(Language.JA), "lang:ja"),
    (AskPerson(Reason.MISSES), "handoff:misses"),
    (AskPerson(Reason.REFUND_DISPUTE), "handoff:refund_dispute"),
    (StopWaiting(), "handoff:cancel"),
    (RateHandoff(Rating.GOOD), "handoff:feedback:good"),
    (RateHandoff(Rating.BAD), "handoff:feedback:bad"),
    (CancelUnpaid("K7PM-3QXA"), "unpaid:cancel:K7PM-3QXA"),
    (LinkAccount(), "link:start"),
    (UnlinkAccount(), "link:unlink"),
    (SignedIn(), "signin:done"),
]

_words = st.text(max_size=30)
_slot_names = st.text(max_size=20).filter(lambda name: ":" not in name)
payloads: st.SearchStrategy[Payload] = st.one_of(
    st.builds(AskIntent, st.sampled_from(Intent)),
    st.builds(StartForm, _words),
    st.builds(SetSlot, _slot_names, _words),
    st.builds(ChangeSlot, _words),
    st.just(CancelForm()),
    st.just(ResumeForm()),
    st.builds(ShowSymptom, st.sampled_from(Symptom)),
    st.builds(SwitchLanguage, st.sampled_from(Language)),
    st.builds(AskPerson, st.sampled_from(Reason)),
    st.just(StopWaiting()),
    st.builds(RateHandoff, st.sampled_from(Rating)),
    st.builds(CancelUnpaid, _words),
    st.just(LinkAccount()),
    st.just(UnlinkAccount()),
    st.just(SignedIn()),
)
# Text that looks like a payload: a namespace of ours (or not), a colon, and anything.
payload_like = st.builds(lambda head, rest: f"{head}:{rest}",
                         st.sampled_from([*Namespace, "other"]), st.text(alphabet="abcdefgklnorstu:_", max_size=24))


@pytest.mark.parametrize(("payload", "text"), WIRE)
def test_each_kind_is_written_as_it_always_was(payload, text):
    assert encode(payload) == text
    assert decode(text) == payload


@given(payloads)
def test_decode_reads_back_what_encode_wrote(payload):
    assert decode(encode(payload)) == payload


@given(st.one_of(payload_like, st.text(max_size=40)))
def test_what_decodes_is_written_back_byte_for_byte(text):
    payload = decode(text)
    if payload is not None:
        assert encode(payload) == text


@pytest.mark.parametrize("text", [
    "", "hello", "intent", "intent:", "intent:no_such_intent", "form:", "form:start", "form:set:copies",
    "form:bogus", "form:cancel:now", "login:nonsense", "lang:fr", "handoff:nobody", "handoff:feedback",
    "handoff:feedback:meh", "unpaid:refund:K7PM-3QXA", "unpaid:cancel", "link:other", "signin:later",
    "other:thing", "INTENT:greet", " intent:greet",
])
def test_unknown_and_malformed_text_decodes_to_none(text):
    assert decode(text) is None


def test_a_slot_name_with_a_colon_cannot_be_written():
    with pytest.raises(ValueError, match="colon"):
        encode(SetSlot("a:b", "c"))


def test_the_namespace_is_known_also_for_a_stale_payload():
    assert namespace_of("form:bogus") is Namespace.FORM and namespace_of("lang:fr") is Namespace.LANG
    assert namespace_of("form") is None and namespace_of("weather: sunny") is None


@pytest.mark.parametrize(("text", "intent"), [
    ("intent:payment_methods", Intent.PAYMENT_METHODS),
    ("login:first", Intent.LOGIN_HELP),
    ("login:nonsense", Intent.LOGIN_HELP),  # a symptom since removed is still login help
    ("lang:en", Intent.LANGUAGE),
    ("handoff:feedback:good", Intent.HUMAN_AGENT),
    ("unpaid:cancel:K7PM-3QXA", Intent.REFUND),
    ("intent:no_such_intent", None),
    ("form:cancel", None),
    ("signin:done", None),
    ("hello", None),
])
def test_a_tap_is_answered_by_its_topic(text, intent):
    assert topic_of(text) is intent
