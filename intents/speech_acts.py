"""Whether a message asks for something to be done (a request) or asks about something (a question).

「成績証明書を実家に郵送してもらいたいんですけど」 wants a transcript mailed: an application, though it talks
of mail. 「駐車場の使用料はここで払うんですか？」 asks whether the fee is paid here: a question about the item,
not the wish to pay it now. The classifier hears the topic (mail, a fee); these words tell what is wanted.
"""

import re

# Wanting, asking someone to do it, or announcing it: 「…したい」「…してほしい」「…お願いします」「…もらえますか」,
# "I need…", "I'd like…", "can I get…", "please…". Matched in a normalized (NFKC, lower-case) message.
_REQUEST = re.compile(
    r"たい|たく(?:存じ|思)|させて(?:いただ|もら|ください)|ほしい|欲しい|ください|下さい|くださ|お願い|おねがい|頼み|頼む|たのむ|もらえ|貰え|いただけ|頂け|"
    r"申請します|申し込みます|申込みます|希望します|希望です|(?:申請|発行)(?:して|お願い)|申し?込め|申請でき|"
    r"申し?込みでき|必要"
    r"|\b(?:i'?d like|i would like|i want|i wanna|i need|need|want|please|pls|plz|"
    r"(?:can|could|may) i (?:get|have|order|apply|request|receive)|(?:can|could|would) you (?:send|mail|print|"
    r"issue|post)|send me|mail me|i'?ll take|let me (?:apply|order)|i'?m applying|i'?d like to)\b")
# A question: a question mark, a Japanese question ending, an English question's first word, or asking to be
# told (「受取方法を教えてください」 wants an answer, not a certificate).
_QUESTION = re.compile(
    r"[?？]|(?:か|かな|かね|っけ|でしょう|の|もここ|ここ)[。.!！\s]*$"
    r"|^(?:how|what|when|where|which|who|why|can|could|is|are|do|does|did|will|would|should|may)\b"
    r"|教えて|おしえて|知りたい|しりたい|わから|分から|\b(?:tell me|explain|wonder(?:ing)?|want to know|"
    r"like to know)\b")
# Asking how, where, when or what: a question about the way, even beside a wish (「印刷したいけど、どうすれば？」).
_WH_WORD = re.compile(r"どう|どこ|いつ|何|なに|なん|どれ|どの|\b(?:how|where|when|what|which|why)\b")


def is_request(normalized_text: str) -> bool:
    """True if the message wants something done (「郵送してほしい」, "I need my transcript mailed")."""
    return bool(_REQUEST.search(normalized_text))


def is_question(normalized_text: str) -> bool:
    """True if the message is phrased as a question (a question mark, 「…ですか」, "is it…")."""
    return bool(_QUESTION.search(normalized_text.strip()))


def asks_how(normalized_text: str) -> bool:
    """True if the message asks how, where, when or what (a question about the way, not only a wish)."""
    return bool(_WH_WORD.search(normalized_text))
