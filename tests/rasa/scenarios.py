"""The conversations recorded through a real Rasa (tests/rasa/record.py): each a sender and the messages a student
sends, typed or tapped (a button's payload, as Rasa's REST channel sends a tap)."""

# Every guided form in both languages, the steering words typed and tapped inside a form, a question, gibberish
# and a person asked for mid-form, single and double questions, the fallback, and Rasa's own /restart.

def tap(intent: str, payload: str) -> str:
    """A madoguchi button as Rasa's REST channel sends its tap: `/intent{"payload": "..."}`."""
    return f'/{intent}{{"payload": "{payload}"}}'


# The student opened the sign-in link mailed for the number typed before (tests/rasa/record.py starts a madoguchi
# session for it): the site's front end tells the chat, and passes the session with every later message.
SIGN_IN = tap("order_certificate", "signin:done")
# The student each scenario signs in as, at SIGN_IN or from its first message.
SIGNED_IN: dict[str, str] = {"order_ja": "24M1001", "order_en": "24M1001", "lookup_en": "21M1003",
                             "cancel_typed_ja": "24M1001", "question_mid_form_ja": "24M1001",
                             "restart_mid_form_ja": "24M1001"}

SCENARIOS: dict[str, list[str]] = {
    "order_ja": ["証明書を申し込みたいです", "24M1001", SIGN_IN, "成績証明書", "2通",
                 tap("order_certificate", "form:set:delivery:mail"), "807-8555", "1-1 医生ケ丘ハイツ203",
                 tap("order_certificate", "form:set:recipient:self"), "090-1234-5678", "クレジットカードで",
                 tap("order_certificate", "form:change:postal"), "100-0001", "1-1-1",
                 tap("order_certificate", "form:set:confirm:yes")],
    "order_en": ["I'd like to order a certificate", "my student number is 24M1001", SIGN_IN, "transcript", "1",
                 "by mail please", "100-0001", "1-1-1 Palace Tower 1203", "Hanako Watanabe", "+81 90 1234 5678",
                 "credit card", "yes"],
    "reset_ja": ["第2パスワードを忘れました", tap("second_password_reset", "form:start:reset"), "24M1001"],
    "reset_en": ["I forgot my second password", "yes please send the link", "24M1001"],
    "lookup_en": ["I want to check my order status", "21M1003", SIGN_IN],  # a student no other scenario orders for
    "cancel_typed_ja": ["成績証明書を申請したい", "24M1001", SIGN_IN, "やっぱりやめます", "支払い方法を教えて"],
    "cancel_tapped_en": ["I need a transcript", tap("order_certificate", "form:cancel")],
    "question_mid_form_ja": ["証明書を申し込みたい", "24M1001", SIGN_IN, "支払い方法は何がありますか？",
                             tap("order_certificate", "form:resume"), "在学証明書", "やめます"],
    "person_mid_form_ja": ["証明書を申し込みたい", "人と話したいです"],
    "odd_inputs_mid_form_en": ["I need a transcript", "asdfghjkl", "/human_agent"],
    "questions_ja": ["いつ受け取れますか", "支払い方法と、学生支援課の電話番号を教えて"],
    "questions_en": ["when can I pick up my certificate?",
                     "what payment methods can I use, and what's the call center's number?"],
    "fallback_en": ["hello", "what's the weather in Kitakyushu tomorrow?", "asdfghjkl"],
    "restart_mid_form_ja": ["証明書を申し込みたい", "24M1001", SIGN_IN, "/restart", "支払い方法を教えて"],
}
