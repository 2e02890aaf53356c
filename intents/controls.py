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
_YES = (r"はい|うん|ええ|おけ|おっけー?|了解(?:です)?|りょ|いい(?:です|よ)|(?:それ|これ)で(?:いい|大丈夫|ok|お願い)|"
        r"大丈夫です|問題(?:ない|ありません)|お願いします|おねがいします|お願い|頼みます|確定(?:する|します|で)?|"
        r"申請(?:する|します|で)|(?:送|おく)って(?:ください|下さい|ほしい)?|送信(?:して|します)?|おねがい|"
        r"yes|yeah|yep|yup|sure|ok|okay|confirm(?:ed)?|correct|right|go ahead|do it|please do|"
        r"send(?: it| the link| me the link| me the reset link)?|that'?s (?:all )?(?:right|correct|fine|good)|"
        r"all (?:correct|good|right|fine)|perfect|great|sounds good|looks good|lgtm|agreed?|apply")
_PHRASES: tuple[tuple[Control, str], ...] = (
    (Control.CANCEL, r"キャンセル(?:する|します|したい|して|お願いします)?|取り?消し(?:て|たい|ます)?|取りやめ|"
                     r"中止(?:する|します|したい|して|で)?|やっぱり?(?:いい|なし|やめ)|もういい|いいや|なしで|"
                     r"止め(?:る|ます|たい|て)|やめ(?:る|ます|たい|て|とく|ておく|ときます|ておきます|や)?|"
                     r"やーめた|いらない|不要です|必要ない|結構です|"
                     r"cancel(?:led)?|stop|quit|abort|never ?mind|forget (?:it|about it)|nvm|no thanks|i'?ll pass|"
                     r"i don'?t (?:want|need) (?:it|this|that|to)(?: anymore)?|not (?:needed|anymore)|"
                     r"(?:i'?ll |i will )?(?:apply|do it|do this|try|come back|order)(?: again)? later|maybe later|"
                     r"また(?:今度|後で|あとで)|(?:後|あと)で(?:いい|やる|します|申請します)"),
    (Control.CONTINUE, r"(?:続|つづ)け(?:る|ます|たい|て)?|続き(?:から)?|続行|再開|そのまま(?:続けて|進めて)?|進めて|"
                       r"continue|resume|go on|carry on|keep going|proceed|let'?s continue"),
    (Control.BACK, r"戻る|戻って|戻り(?:たい|ます)|前に戻(?:る|って)|"
                   r"(?:ひとつ|一つ|一個|1個|いっこ)前(?:に戻(?:る|って))?|前の(?:質問|画面|ステップ)|"
                   r"(?:go )?back|previous(?: step| question)?|undo"),
    (Control.CHANGE, r"変更(?:する|します|したい|して|お願いします)?|変え(?:る|たい|ます|て)|直(?:す|したい|して)|"
                     r"修正(?:する|したい|して)?|訂正(?:したい)?|間違えた|"
                     r"change(?: it| something| that)?|edit|modify|fix(?: it)?|i made a mistake"),
    (Control.YES, _YES),
    (Control.NO, r"(?:いいえ|いえ|いや)[、,\s]*(?:大丈夫|結構|いい)(?:です)?|いいえ|いえ|いや|ううん|"
                 r"違(?:う|います)|ちがう|ちゃうよ?|だめ|間違い(?:です)?|続けない|続けません|今はいい(?:です)?|"
                 r"自分で(?:やる|やります|します|できる|できます)(?:から|ので)?(?:大丈夫|いい)?(?:です)?|"
                 r"no|nope|nah|not now|not yet|wrong|incorrect|(?:don'?t|do not) (?:continue|proceed|go on)|"
                 r"no more|no,? (?:i'?m|it'?s) (?:fine|ok|good)"),
)
# Politeness, filler and the object of the action, which may surround a control phrase.
_FILLER = (
    r"やっぱり?|やはり|やっぱし|すみません|すいません|ごめん(?:なさい)?|えっと|あの|ああ?|あっ|おっと|ちょっと|もう|"
    r"待って|まって|"
    r"そっか|そうか|そうなんだ|そうなんですね|そうですか|なるほど|わかりました|分かりました|"
    r"じゃあ?|では|なら|ください|下さい|お願い(?:します|いたします)?|します|です|ます|で|を|は|が|に|の|ね|よ|な|わ|か|"
    r"(?:この|その|今の|さっきの)?(?:申請|注文|申し込み|手続き|フォーム|質問)|"
    r"再設定(?:の)?(?:リンク|メール|url)?|リンク|メール|"
    r"please|pls|plz|actually|um+|uh+|well|oh|oops|whoops|hmm+|sorry|then|just|thanks|thank you|the|a|it|"
    r"this|that|my|order|application|request|form|reset|link|mail|email|password|all|everything|want to|"
    r"i want to|i'?d like to|let'?s|let me|can you|could you|i|me|yo|hey|wait|hold on"
)
_SEPARATOR = r"[\s、,。.!?~ー〜]*"


def _pattern(control: Control, phrase: str) -> re.Pattern[str]:
    """Filler, then a phrase of the control, then its phrases and filler: the whole message and nothing else.
    Before another control's phrase a yes is filler too ("ok, let's continue", 「はい、キャンセルで」), and before a
    cancel a no ("nah, cancel it")."""
    filler = _FILLER if control in (Control.YES, Control.NO) else f"{_FILLER}|{_YES}"
    if control is Control.CANCEL:  # "nah, cancel it", 「いや、やっぱやめます」
        filler = f"{filler}|no|nah|nope|いや|いいえ"
    return re.compile(rf"^(?:(?:{filler}){_SEPARATOR})*(?:{phrase})(?:{_SEPARATOR}(?:{phrase}|{filler}))*{_SEPARATOR}$")


_CONTROLS = tuple((control, _pattern(control, phrase)) for control, phrase in _PHRASES)
MAX_CONTROL_CHARS = 40  # a control word comes alone; a long message is a question
# A cancel or a step back may come with its reason, before (「番号わかんないのでやめます」) or after (「やっぱり
# やめます。親に聞いてからにします」, 「ちょっと戻ってください、受取方法まちがえた」); not a reason about paying
# or having applied (「もう申請したからキャンセルしたい」 asks about a refund).
_WITH_REASONS = tuple((control, pattern) for control, pattern in _CONTROLS
                      if control in (Control.CANCEL, Control.BACK, Control.CONTINUE))
_REASON_BEFORE = re.compile(r"^(?![^?]*(?:申請し|払っ|支払|注文し|購入|paid|ordered|applied))[^?]{1,24}?"
                            r"(?:ので|から(?![なはで])|けど|so|because)[、,\s]*")
_REASON_AFTER = re.compile(r"(?<=[。.!、,])\s*(?![^?]*(?:教え|ください|下さい|たい|ほしい|欲しい|か$|what|how|where|"
                           r"when|tell|please|can|could))[^?]{1,30}$")


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
    found = next((control for control, pattern in _CONTROLS if pattern.match(text)), None)
    if found is not None:
        return found
    for rest in (_REASON_BEFORE.sub("", text, count=1), _REASON_AFTER.sub("", text)):
        rest = rest.strip()
        if rest and rest != text:
            found = next((control for control, pattern in _WITH_REASONS if pattern.match(rest)), None)
            if found is not None:
                return found
    return None


# Leaving the queue for a person: 「ボットに戻る」, "back to the bot", 「待つのやめます」, also after a word of
# politeness or a change of mind (「あ、やっぱり大丈夫です。ボットに戻してください」). Never a question about it
# (「ボットに戻るとどうなりますか」), its opposite (「ボットに戻りたくないです」, "I don't want to go back to the bot"),
# nor words that only sound alike (「担当者はいいですね、助かります」): those go to the person as they are.
_TO_THE_BOT = re.compile(
    r"(?:チャット)?(?:ボット|ぼっと|bot|botto|自動応答)(?:との会話|の会話|との?チャット)?(?:に|へ|ni|e)?\s*"
    r"(?:戻|もど|modo)|チャットに戻|"
    r"(?:back|return) to (?:the )?(?:bot|chatbot|chat bot|assistant)|stop waiting|"
    r"(?:i'?ll|i will) talk to (?:the )?bot|"
    r"cancel (?:the |my )?(?:handover|handoff|request for a person|wait(?:ing)?)|"
    r"(?:待つの|まつの)(?:を|は)?(?:もう)?(?:やめ|止め|キャンセル)|待たなくて(?:いい|大丈夫|結構)")
# Said alone (with politeness), these mean the same: 「担当者はもういいです」, "I don't need a person anymore".
_NO_PERSON = re.compile(
    rf"^(?:(?:{_FILLER}){_SEPARATOR})*(?:"
    r"(?:担当者|人|ひと|オペレーター)(?:さん|の方)?(?:は|を)?(?:もう)?(?:いい|いらない|不要|大丈夫|待たない|待ちません)|"
    r"(?:i )?(?:don'?t|do not) (?:need|want) (?:a |to talk to a |to wait for a )?(?:person|human|staff(?: member)?|"
    r"agent)(?: anymore)?)"
    rf"(?:{_SEPARATOR}(?:{_FILLER}))*{_SEPARATOR}$")
# Right after the words: 「戻りたくない」「戻らない」.
_NEGATED_AFTER = re.compile(r"^(?:る|り|ら|って|して|します|ります|りたい)?(?:たく)?(?:ない|なく|ません|ず)")
# Right before them: "don't want to go back", "not".
_NEGATED_BEFORE = re.compile(r"(?:don'?t|do not|won'?t|not|never)\b[^.,!]{0,20}$")
# A question about it, or a condition: 「…とどうなりますか」「…ませんか」, "what happens if…".
_ABOUT_IT = re.compile(r"[?？]|方法|どう|なりますか|ですか|ませんか|ますか|(?:か|の|かな)[。.!]*$|"
                       r"\bhow\b|\bwhat\b|\bif\b|\bwhy\b|\bcan i\b")


def back_to_the_bot(normalized_text: str) -> bool:
    """Whether a message asks to stop waiting for a person and talk to the bot again (typed, not tapped).

    Args:
        normalized_text: Output of `intents.normalize.normalize` (NFKC, case-folded).
    """
    text = normalized_text.strip()
    if not text or len(text) > MAX_CONTROL_CHARS * 2 or _ABOUT_IT.search(text):
        return False
    if _NO_PERSON.match(text):
        return True
    found = _TO_THE_BOT.search(text)
    if found is None:
        return False
    return not (_NEGATED_AFTER.match(text[found.end():]) or _NEGATED_BEFORE.search(text[:found.start()]))
