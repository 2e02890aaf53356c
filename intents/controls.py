"""Typed steering words: cancel, yes, no, back, change, continue, in Japanese and English.

Inside a guided step a student types 「やっぱりやめます」 or "yes please send the link" instead of tapping a
button. A message is read as a control word only when it says nothing else: 「キャンセルで」 and "cancel
the order" are, 「支払い後にキャンセルしたい」 (a refund question) is not.
"""

import re
from enum import StrEnum


class Control(StrEnum):
    """What a typed steering word does, as the matching button would."""

    CANCEL = "cancel"
    YES = "yes"
    NO = "no"
    BACK = "back"
    CHANGE = "change"
    CONTINUE = "continue"


# Each control's phrases, matched against the whole normalized message once politeness and filler are cut.
_PHRASES: tuple[tuple[Control, str], ...] = (
    (Control.CANCEL, r"キャンセル(?:する|します|したい|して|お願いします)?|取り?消し(?:て|たい|ます)?|取りやめ|"
                     r"中止(?:する|します|したい|して|で)?|やっぱり?いい|止め(?:る|ます|たい|て)|やめ(?:る|ます|たい|て|とく|ておく|"
                     r"ときます|ておきます)?|やーめた|もういい|いらない|不要です|必要ない|結構です|"
                     r"cancel(?:led)?|stop|quit|abort|never ?mind|forget (?:it|about it)|nvm|no thanks|i'?ll pass|"
                     r"i don'?t (?:want|need) (?:it|this|that|to)(?: anymore)?|not (?:needed|anymore)"),
    (Control.CONTINUE, r"続け(?:る|ます|たい|て)?|続き(?:から)?|続行|再開|そのまま(?:続けて|進めて)?|進めて|"
                       r"continue|resume|go on|carry on|keep going|proceed|let'?s continue"),
    (Control.BACK, r"戻る|戻って|戻り(?:たい|ます)|前に戻(?:る|って)|ひとつ前|一つ前|前の(?:質問|画面|ステップ)|"
                   r"(?:go )?back|previous(?: step| question)?|undo"),
    (Control.CHANGE, r"変更(?:する|します|したい|して|お願いします)?|変え(?:る|たい|ます|て)|直(?:す|したい|して)|"
                     r"修正(?:する|したい|して)?|訂正(?:したい)?|間違えた|"
                     r"change(?: it| something| that)?|edit|modify|fix(?: it)?|i made a mistake"),
    (Control.YES, r"はい|うん|ええ|おけ|おっけー?|了解(?:です)?|りょ|いい(?:です|よ)|"
                  r"(?:それ|これ)で(?:いい|大丈夫|ok|お願い)|大丈夫です|問題(?:ない|ありません)|お願いします|おねがいします|お願い|頼みます|確定(?:する|します|で)?|"
                  r"申請(?:する|します|で)|送って(?:ください|下さい|ほしい)?|送信(?:して|します)?|"
                  r"yes|yeah|yep|yup|ya|sure|ok|okay|k|confirm(?:ed)?|correct|right|go ahead|do it|"
                  r"please do|send(?: it| the link| me the link| me the reset link)?|that'?s (?:right|correct|fine)|"
                  r"sounds good|looks good|lgtm|agreed?|apply"),
    (Control.NO, r"いいえ|いえ|いや|ううん|違(?:う|います)|ちがう|ちゃうよ?|だめ|間違い(?:です)?|"
                 r"no|nope|nah|not now|not yet|wrong|incorrect"),
)
# Politeness, filler and the object of the action, which may surround a control phrase.
_FILLER = (
    r"やっぱり?|やはり|やっぱし|すみません|すいません|ごめん(?:なさい)?|えっと|あの|ちょっと|もう|じゃあ?|では|なら|"
    r"ください|下さい|お願い(?:します|いたします)?|です|ます|で|を|は|が|に|の|ね|よ|な|わ|か|"
    r"(?:この|その|今の|さっきの)?(?:申請|注文|申し込み|手続き|フォーム|質問)|"
    r"再設定(?:の)?(?:リンク|メール|url)?|リンク|メール|"
    r"please|pls|plz|actually|um+|uh+|well|oh|hmm+|sorry|then|just|thanks|thank you|the|a|it|this|that|my|"
    r"order|application|request|form|reset|link|mail|email|password|please|all|everything|want to|i want to|"
    r"i'?d like to|let'?s|let me|can you|could you|i|me"
)
_SEPARATOR = r"[\s、,。.!?~ー〜]*"
# A run of the control's phrases and filler, with at least one phrase ("yes please send the link").
_CONTROLS = tuple(
    (control, re.compile(rf"^(?=.*?(?:{phrase}))(?:(?:{phrase}|{_FILLER}){_SEPARATOR})+$"))
    for control, phrase in _PHRASES
)
MAX_CONTROL_CHARS = 40  # a control word comes alone; a long message is a question


def control_word(normalized_text: str) -> Control | None:
    """The steering word a message consists of, or None.

    Args:
        normalized_text: Output of `intents.normalize.normalize` (NFKC, case-folded).

    Returns:
        The control, when the message says nothing but it (with politeness and filler around it).
    """
    text = normalized_text.strip()
    if not text or len(text) > MAX_CONTROL_CHARS:
        return None
    return next((control for control, pattern in _CONTROLS if pattern.match(text)), None)
