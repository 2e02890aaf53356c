"""Random bodies for POST /api/chat and random query strings for its later messages, over real HTTP to the app
on loopback: every answer is below 500, and a 2xx one carries the replies (or the messages).

Most generated bodies are refused (a 4xx naming the problem: about half 422, a fifth 400 or 413); about three
in ten pass validation and run a whole turn through the pipeline and the database, odd strings (lone surrogates,
NUL, control characters) and all. A turn costs a few milliseconds, so 1,000 inputs per edge take seconds; most
of the time goes to generating the inputs. `pytest --hypothesis-show-statistics` shows the statuses.
"""

import json

import httpx
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzz.conftest import FUZZ


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, each drawn `weight` times in a hundred (one_of draws them alike); the strategies are
    built once, not per example, which keeps generation cheap."""
    assert sum(weight for weight, _ in choices) == 100

    @st.composite
    def draw_one(draw: st.DrawFn) -> object:
        pick = draw(st.integers(0, 99))
        for weight, strategy in choices:
            if pick < weight:
                return draw(strategy)
            pick -= weight
        raise AssertionError("weights add up to 100")

    return draw_one()


# Characters a browser, a script or an attacker can put in a JSON string: every code point, lone surrogates
# (sent as \ud800 escapes) included, with the troublesome ones drawn more often than chance would.
ANY_CHARACTER = st.characters(exclude_categories=())
TROUBLE = st.sampled_from(["\x00", "\ud800", "\udfff", "\udbff\udc00", "\n", "\r", "\t", "\x1b", "\x7f", "\x85",
                           "\u2028", "\ufeff", "\ufffd", "\U0001F600", "あ", "'", '"', "\\", "<", "%", "\u0301"])
# Lengths at the limits (user 128, payload 200, text 2,000, body 16 KiB) and beyond them.
LONG = st.sampled_from([127, 128, 199, 200, 1999, 2000, 8000, 16_300, 20_000])
STRINGS = weighted((50, st.text(ANY_CHARACTER, max_size=20)),
                   (40, st.lists(st.one_of(TROUBLE, ANY_CHARACTER), max_size=12).map("".join)),
                   (10, st.tuples(LONG, TROUBLE).map(lambda pair: "x" * pair[0] + pair[1])))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(10**40), 10**40),
                    st.floats(allow_nan=True, allow_infinity=True), STRINGS)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                              st.dictionaries(STRINGS, inner, max_size=4)),
                           max_leaves=6)
MISSING = object()  # a field left out of the body

# Values that pass validation, odd ones among them, so that some bodies reach the pipeline and the database.
# A user id may hold no control character (it is written to logs); NUL is one, but it is dropped, not refused.
USER_TROUBLE = st.sampled_from(["\x00", "\ud800", "\udfff", "\udbff\udc00", "\u2028", "\ufeff", "\U0001F600", "'",
                                '"', "\\", "<", "%", " "])
USERS = st.one_of(st.sampled_from(["fuzz-a", "fuzz-b", "ユーザー"]),
                  st.lists(st.one_of(USER_TROUBLE, st.sampled_from("abc-")), min_size=1, max_size=8).map(
                      lambda parts: "f" + "".join(parts)))
TEXTS = st.one_of(st.sampled_from(["こんにちは", "支払い方法は？", "hello", "", "24M1001", "窓口", "English please"]),
                  st.lists(st.one_of(TROUBLE, st.sampled_from("あいうabc 12")), max_size=10).map("".join))
PAYLOADS = st.sampled_from(["intent:contact", "intent:payment_methods", "menu", "form:cancel", "nonsense", "",
                            "intent:\x00contact", "\ud800"])


def field(valid: st.SearchStrategy, percent_valid: int) -> st.SearchStrategy:
    """A field's value: valid `percent_valid` times in a hundred, else absent or any JSON value at all."""
    return weighted((percent_valid, valid), (100 - percent_valid, st.one_of(st.just(MISSING), JSON_VALUES)))


KNOWN_FIELDS = st.fixed_dictionaries({
    "user": field(USERS, 60),
    "text": field(TEXTS, 50),
    "payload": field(PAYLOADS, 40),
    "lang": field(st.sampled_from(["ja", "en"]), 60),
})
BODIES = st.tuples(KNOWN_FIELDS, st.dictionaries(STRINGS, JSON_VALUES, max_size=2)).map(  # unknown fields too
    lambda pair: {**pair[1], **{name: value for name, value in pair[0].items() if value is not MISSING}})


def encoded(body: object, how: str) -> bytes:
    """A body as a client might send it: escaped ASCII, raw UTF-8 (lone surrogates as invalid bytes), or with
    the JSON spelled with whitespace and a BOM."""
    if how == "ascii":
        return json.dumps(body).encode()
    if how == "utf-8":
        return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return b"\xef\xbb\xbf" + json.dumps(body, indent=1).encode()


DEPTHS = st.integers(1, 6000)
JSON_BODIES = st.tuples(BODIES, st.sampled_from(["ascii"] * 4 + ["utf-8", "bom"])).map(lambda pair: encoded(*pair))
NOT_JSON = st.one_of(
    st.binary(max_size=300),  # not JSON, not UTF-8
    DEPTHS.map(lambda depth: b'{"user": "deep", "text": "x", "x": ' + b"[" * depth + b"]" * depth + b"}"),
    DEPTHS.map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.tuples(BODIES, st.integers(1, 40)).map(lambda pair: json.dumps(pair[0]).encode()[:-pair[1]]),  # cut short
)
RAW_BODIES = weighted((70, JSON_BODIES), (30, NOT_JSON))

# Query strings of the later messages: any bytes percent-encoded (NUL, surrogates as ED A0 80, invalid UTF-8),
# numbers of every size, repeated and unknown parameters.
QUERY_VALUES = st.one_of(
    st.binary(max_size=12).map(lambda raw: "".join(f"%{byte:02X}" for byte in raw)),
    st.integers(-(10**30), 10**30).map(str),
    st.integers(0, 2**32).map(str),
    st.sampled_from(["0", "1", "fuzz-a", "², ", "٣", "1e3", "0x10", " 1", "+1", "%ED%A0%80", "a%00b", "%F0%9F%98%80"]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10).map(
        lambda text: text.replace("&", "%26").replace("#", "%23")),
    st.integers(0, 6000).map(lambda size: "u" * size),
)
QUERIES = st.lists(st.tuples(st.sampled_from(["user", "user", "after", "after", "x", ""]), QUERY_VALUES),
                   max_size=4).map(lambda pairs: "&".join(f"{name}={value}" for name, value in pairs))


def check(response: httpx.Response, key: str) -> None:
    """Below 500; a 2xx has `key` (a list); a refusal says what is wrong."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code < 300:
        assert isinstance(response.json()[key], list), response.text[:500]
    else:
        answer = response.json()
        assert answer["error"], answer
        if response.status_code == 422:
            assert answer["field"] in ("body", "user", "text", "payload", "lang", "after"), answer


# A Last-Event-ID header as a client can send it: any byte a header value may hold (h11 refuses the others).
HEADER_VALUES = st.binary(max_size=24).map(lambda raw: bytes(b for b in raw if b >= 0x20 and b != 0x7F).strip())


@FUZZ
@given(raw=RAW_BODIES)
def test_any_body_gets_an_answer_below_500(chat_server, raw):
    response = chat_server.client.post("/api/chat", content=raw, headers={"content-type": "application/json"})
    event(f"status {response.status_code}")  # pytest --hypothesis-show-statistics: how many reached the pipeline
    check(response, "replies")


@FUZZ
@given(query=QUERIES)
def test_any_query_of_the_later_messages_gets_an_answer_below_500(chat_server, query):
    response = chat_server.client.get(f"/api/chat/updates?{query}")
    event(f"status {response.status_code}")
    check(response, "messages")


@FUZZ
@given(query=QUERIES, last_event=st.one_of(st.none(), HEADER_VALUES))
def test_any_query_of_the_live_stream_gets_an_answer_below_500(chat_server, query, last_event):
    headers = {"last-event-id": last_event} if last_event else {}
    with chat_server.client.stream("GET", f"/api/chat/events?{query}", headers=headers) as response:
        assert response.status_code < 500
        if response.status_code == 200:  # the stream's first line; the stream is left at once
            assert next(response.iter_lines()) == "retry: 2000"
        else:
            response.read()
            check(response, "messages")
