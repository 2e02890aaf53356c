"""Switching the chat's language (and the service's own language menu), and asking for a person."""

import re
import unicodedata

from core.enums import Language
from handlers import basic
from handlers.messages import say
from handlers.payloads import Namespace, SwitchLanguage, decode, namespace_of
from handlers.registry import HandlerRegistry
from handlers.replies import QuickReply, Reply, Text
from handlers.turn import TurnContext
from intents.types import Intent

_ENGLISH = re.compile(r"english|英語|えいご|eigo")
_JAPANESE = re.compile(r"japanese|日本語|にほんご|nihongo")
# "other than Japanese", "I can't read Japanese", 「日本語以外」「日本語が苦手」: the student wants English.
_NOT_JAPANESE = re.compile(
    r"(other than|besides|except|n't (understand|read|speak)|not (understand|read|speak)|cannot (understand|read))"
    r"\s+(?:much\s+)?japanese|"
    r"japanese (?:is |isn'?t |not |no |very |so |that |really |too )*(?:good|great|bad|poor|limited|weak)|"
    r"(?:bad|poor|weak|not good) (?:at|in) japanese|(?:little|limited|poor|bad) japanese|"
    r"(日本語|にほんご)(が|は)?(以外|苦手|わから|分から|読めな|話せな|できな|得意じゃな)"
)


def requested_language(ctx: TurnContext) -> Language | None:
    """The language a `lang:<code>` button or the message asks for, or None when it names neither (or asks
    only about the service's own screens: 「画面って英語にできる？」 is answered, the chat stays as it is).

    When a message names both, the one named last wins ("the screen turned English, I want Japanese").
    """
    payload = ctx.message.payload or ""
    if namespace_of(payload) is Namespace.LANG:  # a language button: a stale one names none, whatever the text
        tapped = decode(payload)
        return tapped.lang if isinstance(tapped, SwitchLanguage) else None
    text = unicodedata.normalize("NFKC", ctx.message.text or "").lower()
    if _NOT_JAPANESE.search(text):
        return Language.EN
    if _SCREENS.search(text) and not _THIS_CHAT.search(text) and not _WANTS.search(text):
        return None
    english = [match.start() for match in _ENGLISH.finditer(text)]
    japanese = [match.start() for match in _JAPANESE.finditer(text)]
    if not english and not japanese:
        return None
    return Language.EN if max(english, default=-1) > max(japanese, default=-1) else Language.JA


# The service's own screens, which have a language menu of their own, and this chat.
_SCREENS = re.compile(r"画面|表示|サイト|ページ|マニュアル|メニュー|screen|site|page|display|manual|menu|the service")
_THIS_CHAT = re.compile(r"チャット|ここ|返事|答え|会話|chat|you|reply|answer|talk|here")
_WANTS = re.compile(r"want|please|お願い|にして|がいい|希望")


def asks_for_language(ctx: TurnContext) -> bool:
    """True for a request to speak a language (「日本語でお願いします」, "English please"), as opposed to a remark
    about one's Japanese ("my Japanese is not good")."""
    text = unicodedata.normalize("NFKC", ctx.message.text or "").lower()
    return requested_language(ctx) is not None and not _NOT_JAPANESE.search(text)


def language(ctx: TurnContext) -> list[Reply]:
    """Switch the chat to the language asked for and answer in it; explain the service's language menu."""
    target = requested_language(ctx)
    if target is None:
        lang = ctx.lang
        head = say("language.choose", lang)
        buttons: tuple[QuickReply, ...] = (
            QuickReply(say("language.japanese", lang), basic.lang_payload(Language.JA)),
            QuickReply(say("language.english", lang), basic.lang_payload(Language.EN)),
            basic.menu_button(lang),
        )
    else:
        ctx.state.lang = lang = target
        head = say("language.switched", lang)
        buttons = basic.main_menu(lang)
    return [Text(head + "\n\n" + say("language.service_screens", lang), buttons)]


def register(registry: HandlerRegistry) -> None:
    """Wire language (the pipeline also routes `lang:*` button payloads to it)."""
    registry.register(Intent.LANGUAGE, language)
