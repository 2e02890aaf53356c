"""A message cut into clauses, and the clauses that carry no question: openers, closers, self-introductions.

Students rarely send one clean question. 「すみません、学生証をなくしました。再発行したいです」 opens with an
apology; "what time does the call center open, and can I pay at Lawson?" asks two things. The understander
classifies the clauses this module finds; the word lists here only recognise what a classifier cannot be
trusted with alone: short set phrases that must never hide the question after them.
"""

import re
from dataclasses import dataclass

# Where one clause ends and the next begins, in a normalized (NFKC, case-folded) message:
# - sentence ends and line breaks; a full stop only before a space or the end, and not after an
#   abbreviation ("jan. 8", "e.g.", "no. 3" stay whole: see _ABBREVIATION);
# - a colon ("quick question: …"); a comma after a request (「教えてください、…」);
# - a comma or 、 before a word that adds another question (あと, それと, and, also);
# - 「Xと、Y」: two things asked with one verb (支払い方法と、電話番号を教えて), not the 「と」 of "if" after a
#   verb (申請すると、…);
# - ", and" / "; and" / " and also" between two English questions.
_BOUNDARY = re.compile(
    r"[。!?\n;]+\s*"
    r"|(?<![0-9])\.+(?=\s|$)\s*"
    r"|(?<![0-9]):(?![0-9])\s*"
    r"|[、,]\s*(?=(?:あと|それと|それから|ついでに|もう一つ|もうひとつ|また、|and\b|also\b|plus\b|btw\b))"
    r"|(?<=[^\sa-z0-9あっるすくうつむぶぐぬただ])(?<!それ)と[、,]\s*"
    r"|(?<=たい|しい)(?:んだ|んです|のです|です)?(?:けど|けれど|が)[、,]\s*"
    r"|(?:(?<=ください)|(?<=下さい)|(?<=お願いします)|(?<=おねがいします))[、,]\s*"
    r"|\s+(?=and also\b|also\b(?!\s+(?:known|called))|btw\b)"
    r"|\s+(?=and (?:how|what|when|where|which|who|why|can|could|do|does|is|are|will|would|should|may)\b)"
    r"|\s+(?=(?:あと|それと|それから|ついでに)[\s、,])"
)
# The gap between a request and the question after it (「申請したいんだけど、」).
_REQUEST_THEN = re.compile(r"(?:んだ|んです|のです|です)?(?:けど|けれど|が)[、,]\s*")
# A word before a full stop that does not end a sentence: a month or weekday, a Latin abbreviation, a letter.
_ABBREVIATION = re.compile(
    r"(?:^|[\s(])(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun|"
    r"e\.g|i\.e|etc|vs|approx|no|nos|mr|mrs|ms|dr|st|p\.m|a\.m|[a-z])$")
# Conjunctions left at the start of a clause once it is cut off ("and can I…", 「あと、…」).
_LEADING_CONJUNCTION = re.compile(
    r"^(?:(?:[0-9]{1,2}[.)）:]|[(（][0-9]{1,2}[)）]|[①-⑩]|[・•\-*])\s*|(?:それと|それから|ついでに|もう一つ|もうひとつ)[、,\s]*|また[、,\s]+"
    r"|あと(?:[、,\s]+|(?!で|どれ|何|なん|少し|すこし|ちょっと|から|[0-9一二三四五六七八九十]))"
    r"|(?:and also|and|also|plus|btw)\b[,\s]*)"
)

# Greetings, apologies and set phrases that open (or close) a message; matched against a whole clause or
# the start of one. They mirror the greet, thanks and goodbye training examples that have no question.
_OPENER_WORDS = (
    r"こんにち[はわ]|こんばん[はわ]|おはよう(?:ございます)?|はじめまして|初めまして|もしもし|やあ|どうも(?:です)?|ども|"
    r"すみません|すいません|すみませ[んー]*|失礼(?:いた)?します|失礼します|夜分(?:遅く)?に?(?:すみません|失礼します)?|"
    r"お疲れ(?:様|さま)です|おつかれ(?:様|さま)?です|お世話になって(?:おり|い)ます|お世話になります|"
    r"いつもお世話になっております|お忙しいところ(?:すみません|失礼します|恐れ入ります)?|恐れ入ります|"
    r"突然(?:の(?:ご)?連絡)?(?:すみません|失礼します)|"
    r"質問(?:です|があります|させてください|いいですか|してもいいですか)|ちょっと(?:質問|聞きたいんですが)|"
    r"教えてほしいことがあります|聞きたいことがあります|"
    r"(?:[0-9一二三四五]+点|いくつか|少し|ちょっと|[0-9一二三四五]つ)?(?:お伺い|伺い|お聞き|お尋ね|質問)(?:させて)?"
    r"(?:したい|いただきたい)?こと(?:が|も)?(?:ございます|あります|ありまして|あるのですが|があって)|"
    r"(?:hi+|hello+|hey+)(?: there| all| team| everyone)?|hiya|yo|"
    r"good (?:morning|afternoon|evening)|greetings|dear (?:sir|madam|staff)[^,]*|"
    r"sorry(?: to bother(?: you)?)?|excuse me|pardon me|quick question|i have a question|"
    r"(?:a )?question(?: for you)?|can i ask (?:you )?(?:something|a question)|um+|uh+|ok(?:ay)?"
)
_OPENER = re.compile(rf"^(?:(?:{_OPENER_WORDS})(?![a-z])[\s、,。.!~ー〜]*)+")
# Thanks and sign-offs that stand as a clause of their own after the question.
_CLOSER = re.compile(
    r"^(?:(?:お忙しいところ|お手数(?:を)?(?:おかけ(?:いた)?しますが|ですが)|恐縮ですが|恐れ入りますが|すみませんが)"
    r"[、,\s]*)*"
    r"(?:(?:どうぞ|何卒|なにとぞ)?よろしく(?:お願い(?:いた)?します|おねがいします|です)?|"
    r"(?:ありがとう(?:ございます|ございました)?|助かります)|お願いします|おねがいします|"
    r"thanks?(?: (?:you|a lot|so much|in advance))*|thx|ty|cheers|regards|best regards|please help(?: me)?|"
    r"any help (?:is|would be) appreciated)[\s、,。.!]*$"
)
# 「医学科3年の者です」, 「看護学科2年の山田です」, "I'm a 2nd year nursing student", "this is Ken from nursing":
# who is writing, which the question after it does not depend on.
_SELF_INTRODUCTION = re.compile(
    r"^(?:私は|わたしは|僕は|ぼくは|自分は)?[^\s?]{0,16}?(?:[0-9一二三四五六]年(?:生)?|学科|学部|大学院|院生|研究科|"
    r"新入生|留学生|卒業生|在学生)[^\s?]{0,12}?(?:の者|のもの|の学生|です|でございます|と申します|といいます)"
    r"(?:です|でございます)?$"
    r"|^(?:i'?m|i am|this is|my name is)\s(?:a |an |the )?"
    r"(?:[a-z,']+\s){0,4}?(?:student|freshman|sophomore|junior|senior|undergrad(?:uate)?|grad(?:uate)?|"
    r"phd|master'?s|exchange|international|[0-9](?:st|nd|rd|th)[- ]year|"
    r"(?:first|second|third|fourth|fifth|sixth)[- ]year)"
    r"(?:\s[a-z]+){0,6}$"
)


# A Japanese clause that tells what happened (「学生証をなくしました」) is context for the question after it,
# not a question of its own; everything else may ask something.
_JA_NARRATIVE = re.compile(r"(?:ました|でした|だった|った|んだ|ちゃった|しまった|ています|ている|てる|てます|たし|"
                           r"ておりまして|ましたが|ましたけど|たけど|たんですが|たのですが|"
                           r"(?:に|で)も(?:ない|ないです|ありません|なかった|なかったです)|"
                           r"(?:けど|けれど|が)(?:無理|むり|だめ|ダメ|駄目)(?:でした|です|だった)?|"
                           r"(?:ないんです|ないんだ|ないのです|ありません)(?:けど|けれど|が))$")


# A clause that gives the student's own details (「電話番号は090-1234-5678です」, "my email is …", "number is
# Q8RT-2MZN", 「学籍番号は24M1001です」): context, its value read as an entity.
_GIVES_DETAILS = re.compile(
    r"(?:は|is|:)\s*(?:\+?\d[\d\s-]{7,}\d|[\w.+-]+@[\w-]+\.[\w.]+|(?=[a-z-]*\d)[a-z0-9]{4}-?[a-z0-9]{4}|"
    r"\d{2}[a-z]\d{4})\s*(?:です|だ)?[。.!]?$")
# "I paid yesterday", "i lost my student id": told in the past, with nothing asked or wanted in it.
_EN_NARRATIVE = re.compile(
    r"^(?:so |and |but )?i (?:already |just )?(?:paid|applied|ordered|lost|broke|registered|tried|got|received|"
    r"did|made|changed|chose|selected|picked|went|sent|submitted|finished|completed|moved|typed|entered)\b"
    r"(?!.*\b(?:can'?t|cannot|couldn'?t|not|never|no|how|what|when|where|why|which|please|want|need|help|"
    r"wonder|if)\b)")


@dataclass(frozen=True, slots=True)
class Clause:
    """A stretch of the normalized message: `start`/`end` index it; `text` has leading conjunctions cut.

    `question` is True when a question mark ends it; `joined` when it is one of two things asked with one
    verb (「支払い方法と、電話番号を教えて」: 「支払い方法」); `conjoined` when it began with a word that adds
    a question (あと, それと, also), now cut off.
    """

    start: int
    end: int
    text: str
    question: bool = False
    joined: bool = False
    conjoined: bool = False

    def asks(self) -> bool:
        """True unless the clause only tells what happened (context for the next one)."""
        if self.question or self.joined:
            return True
        if _GIVES_DETAILS.search(self.text):
            return False
        if not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", self.text):
            return not _EN_NARRATIVE.match(self.text)
        return not _JA_NARRATIVE.search(self.text.rstrip("、,。.!~ー〜 "))


def split_clauses(normalized_text: str) -> list[Clause]:
    """Cut a normalized message into clauses at sentence ends and where a second question begins.

    Args:
        normalized_text: Output of `intents.normalize.normalize`.

    Returns:
        The non-empty clauses in order; one clause for a message with no boundary.
    """
    clauses: list[Clause] = []
    position = 0
    boundaries = [boundary for boundary in _BOUNDARY.finditer(normalized_text)
                  if not (boundary.group().startswith(".") and _ABBREVIATION.search(normalized_text, 0,
                                                                                     boundary.start()))]
    for boundary in [*boundaries, None]:
        end = boundary.start() if boundary else len(normalized_text)
        piece = normalized_text[position:end]
        trimmed = _LEADING_CONJUNCTION.sub("", piece.strip())
        if re.search(r"\w", trimmed):
            start = position + piece.index(trimmed[0]) if trimmed else position
            mark = boundary.group() if boundary else ""
            # After 「…したいんだけど、」 comes a question of its own, as after あと.
            request = bool(clauses) and _REQUEST_THEN.fullmatch(normalized_text[clauses[-1].end:start] or "")
            clauses.append(Clause(start, start + len(trimmed), trimmed, question="?" in mark,
                                  joined=mark.startswith("と"), conjoined=trimmed != piece.strip() or bool(request)))
        if boundary:
            position = boundary.end()
    return clauses


def strip_opener(clause: Clause) -> Clause | None:
    """The clause without the greetings or apologies it starts with; None when nothing else is left.

    Args:
        clause: One clause.

    Returns:
        The rest of the clause, or None if it was only an opener.
    """
    match = _OPENER.match(clause.text)
    if match is None or match.end() == 0:
        return clause
    rest = clause.text[match.end():]
    if not re.search(r"\w", rest):
        return None
    return Clause(clause.end - len(rest), clause.end, rest, clause.question, clause.joined, clause.conjoined)


def is_closer(clause: Clause) -> bool:
    """True for thanks or a sign-off standing as its own clause (「よろしくお願いします」, "thanks in advance")."""
    return bool(_CLOSER.match(clause.text))


def gives_details(clause: Clause) -> bool:
    """True for a clause that only gives the student's own phone number or email (「電話番号は090-…です」)."""
    return bool(_GIVES_DETAILS.search(clause.text))


def is_self_introduction(clause: Clause) -> bool:
    """True for a clause that only says who is writing (「医学科3年の者です」, "I'm a grad student")."""
    return bool(_SELF_INTRODUCTION.match(clause.text.rstrip("、,. ")))


# Insults and swearing. The classifier learns what abuse sounds like, but a short unknown word (「ふがふが」)
# can sound like it too: a message is taken as abuse only when one of these words is in it as well.
_ABUSIVE = re.compile(
    r"クソ|くそ|糞|死ね|しね|氏ね|殺す|ころす|ぶっ殺|バカ|馬鹿|ばーか|ばか[やだに]|アホ|あほ[かだ]?|ボケ|カス|ゴミ|クズ|"
    r"うざ|ウザ|きもい|キモ|きっしょ|使えね|つかえね|使えない(?:ボット|bot|チャット)|役立たず|やくたたず|ふざけ|ざけんな|"
    r"黙れ|だまれ|ポンコツ|ぽんこつ|無能|消えろ|きえろ|ムカつ|むかつ|しばく|"
    r"\bf+u+c*k+|\bf\*+k|\bfck|\bfk u|\bshit|stupid|idiot|\bdumb|useless|\bsucks?\b|moron|\bcrap|\bwtf\b|hate you|"
    r"\btrash\b|garbage|bullshit|screw you|shut up|\bdamn|\bbitch|\bloser|pathetic|\bretard|\bjerk"
)


def is_abusive(text: str) -> bool:
    """True if a normalized message holds an insult or a swear word."""
    return bool(_ABUSIVE.search(text))
