"""The understander: one smoke sentence a intent and language, hostile inputs, invariants, loading."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import intents.understander as understander_module
from core.enums import Language
from intents import Intent, Understanding, load_understander
from intents.classifier import IntentModel, features, fit
from intents.data import load_examples
from intents.datetimes import TOKYO
from intents.normalize import normalize
from intents.types import EntityType
from intents.understander import CONFIDENCE_THRESHOLD, MAX_INPUT_CHARS, Understander
from tests.intents.conftest import NOW

JA, EN = Language.JA, Language.EN

# Written for these tests: none is a training example (checked below) or a development-set line.
SMOKE = [
    (Intent.GREET, JA, "こんにちは、少しいいですか"),
    (Intent.GREET, JA, "おはようございます、いま質問できますか"),
    (Intent.GREET, EN, "hello, anybody home?"),
    (Intent.GREET, EN, "good morning bot"),
    (Intent.GOODBYE, JA, "それではさようなら"),
    (Intent.GOODBYE, JA, "またねー、ばいばい"),
    (Intent.GOODBYE, EN, "ok goodbye then"),
    (Intent.GOODBYE, EN, "alright, see you around then"),
    (Intent.THANKS, JA, "ご丁寧にありがとうございました"),
    (Intent.THANKS, JA, "助かった、ありがと"),
    (Intent.THANKS, EN, "thank you, very helpful"),
    (Intent.THANKS, EN, "many thanks, that sorted it"),
    (Intent.LOGIN_HELP, JA, "ログインIDがどこにあるのか分からない"),
    (Intent.LOGIN_HELP, JA, "ログインしようとしてもエラーで入れない"),
    (Intent.LOGIN_HELP, EN, "i cannot log in to the site"),
    (Intent.LOGIN_HELP, EN, "where can i find my user id"),
    (Intent.SECOND_PASSWORD_RESET, JA, "第2パスワードを忘れたのでリセットしたい"),
    (Intent.SECOND_PASSWORD_RESET, JA, "第二パスワードが思い出せません"),
    (Intent.SECOND_PASSWORD_RESET, EN, "i forgot my second password, how to reset"),
    (Intent.SECOND_PASSWORD_RESET, EN, "need to reset my 2nd password"),
    (Intent.SECOND_PASSWORD_RULES, JA, "第2パスワードは何文字以上必要ですか"),
    (Intent.SECOND_PASSWORD_RULES, JA, "第2パスワードに大文字は必要？"),
    (Intent.SECOND_PASSWORD_RULES, EN, "how long must the second password be"),
    (Intent.SECOND_PASSWORD_RULES, EN, "second password rules please"),
    (Intent.EMAIL_REGISTRATION, JA, "メールアドレス登録の確認メールが届きません"),
    (Intent.EMAIL_REGISTRATION, JA, "確認メールのURLの期限が切れてしまった"),
    (Intent.EMAIL_REGISTRATION, EN, "i never got the confirmation email after registering"),
    (Intent.EMAIL_REGISTRATION, EN, "the one-time url has expired"),
    (Intent.EMAIL_CHANGE, JA, "登録メールアドレスを変更する方法"),
    (Intent.EMAIL_CHANGE, JA, "メアドを新しいのに変更したい"),
    (Intent.EMAIL_CHANGE, EN, "how do i change my registered email"),
    (Intent.EMAIL_CHANGE, EN, "i want to update my email address"),
    (Intent.PAYMENT_METHODS, JA, "支払いにPayPayは使えますか"),
    (Intent.PAYMENT_METHODS, JA, "どんな支払い方法がありますか"),
    (Intent.PAYMENT_METHODS, EN, "can i pay by credit card"),
    (Intent.PAYMENT_METHODS, EN, "which payment methods do you accept"),
    (Intent.REFUND, JA, "間違えて払ったので返金してほしい"),
    (Intent.REFUND, JA, "返金はできますか"),
    (Intent.REFUND, EN, "can i get a refund for a wrong order"),
    (Intent.REFUND, EN, "i want my money back"),
    (Intent.PICKUP_TIMING, JA, "申請したらいつ受け取れますか"),
    (Intent.PICKUP_TIMING, JA, "15時過ぎに申請した場合はいつ受け取れる"),
    (Intent.PICKUP_TIMING, EN, "when will my certificate be ready to pick up"),
    (Intent.PICKUP_TIMING, EN, "how many days does it take to be ready"),
    (Intent.WINDOW_PICKUP_HOWTO, JA, "窓口受取りのとき住所には何を入力すればいい"),
    (Intent.WINDOW_PICKUP_HOWTO, JA, "郵送対応完了というメールが届いたけどどういう意味"),
    (Intent.WINDOW_PICKUP_HOWTO, EN, "what goes in the address field if i collect at the window"),
    (Intent.WINDOW_PICKUP_HOWTO, EN, "what do i bring when i pick it up at the window"),
    (Intent.ORDER_CERTIFICATE, JA, "在学証明書を申請したいです"),
    (Intent.ORDER_CERTIFICATE, JA, "成績証明書を3通ほしい"),
    (Intent.ORDER_CERTIFICATE, EN, "please issue two copies of my transcript"),
    (Intent.ORDER_CERTIFICATE, EN, "how do i apply for an enrollment certificate"),
    (Intent.FEE_ITEMS, JA, "学生証をなくしたので再発行したい"),
    (Intent.FEE_ITEMS, JA, "駐車場の使用料を払いたい"),
    (Intent.FEE_ITEMS, EN, "i lost my student id card"),
    (Intent.FEE_ITEMS, EN, "how to renew my liability insurance online"),
    (Intent.DELIVERY_OPTIONS, JA, "コンビニで証明書を印刷できますか"),
    (Intent.DELIVERY_OPTIONS, JA, "証明書を郵送してもらえますか"),
    (Intent.DELIVERY_OPTIONS, EN, "can i print the certificate at a convenience store"),
    (Intent.DELIVERY_OPTIONS, EN, "is there a printer on campus for certificates"),
    (Intent.ORDER_STATUS, JA, "申請の状況を確認したい"),
    (Intent.ORDER_STATUS, JA, "申し込んだ証明書が今どうなっているか知りたい"),
    (Intent.ORDER_STATUS, EN, "what is the status of my application"),
    (Intent.ORDER_STATUS, EN, "has my order been processed"),
    (Intent.LANGUAGE, JA, "英語で対応してください"),
    (Intent.LANGUAGE, JA, "表示言語を英語に切り替えたい"),
    (Intent.LANGUAGE, EN, "can you answer in english"),
    (Intent.LANGUAGE, EN, "how do i switch the language"),
    (Intent.CONTACT, JA, "学生支援課の電話番号を教えて"),
    (Intent.CONTACT, JA, "コールセンターの受付時間は"),
    (Intent.CONTACT, EN, "what is the call center phone number"),
    (Intent.CONTACT, EN, "student support office hours"),
    (Intent.HUMAN_AGENT, JA, "人間のスタッフと話したい"),
    (Intent.HUMAN_AGENT, JA, "オペレーターにつないでください"),
    (Intent.HUMAN_AGENT, EN, "i want to talk to a human"),
    (Intent.HUMAN_AGENT, EN, "connect me to a staff member"),
    (Intent.OUT_OF_SCOPE, JA, "学食のおすすめメニューは"),
    (Intent.OUT_OF_SCOPE, JA, "履修登録はいつまで"),
    (Intent.OUT_OF_SCOPE, EN, "what's the weather like today"),
    (Intent.OUT_OF_SCOPE, EN, "when is the tuition due"),
]


@pytest.mark.parametrize(("intent", "lang", "text"), SMOKE)
def test_smoke(nlu: Understander, intent: Intent, lang: Language, text: str) -> None:
    understanding = nlu.understand(text, now=NOW)
    assert (understanding.intent, understanding.lang) == (intent, lang), understanding.candidates


def test_smoke_sentences_are_not_training_examples() -> None:
    training = {normalize(example.text) for example in load_examples()}
    assert [text for _, _, text in SMOKE if normalize(text) in training] == []
    assert {intent for intent, _, _ in SMOKE} == set(Intent)
    assert {(intent, lang) for intent, lang, _ in SMOKE} == {(i, lang) for i in Intent for lang in Language}


HOSTILE = [
    "",
    " ",
    "\n\t\u3000",
    "x" * 10_000,
    "ほげ" * 5_000,
    "😀🎉🙏",
    "👍",
    "！？……",
    "12345",
    "<table><tr><td>1</td></tr></table>",
    "<script>document.cookie</script>",
    "<a href='http://x'>click</a>",
    "SELECT name FROM users WHERE id = 1; --",
    "' OR 1=1 --",
    "DROP TABLE orders;",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_inputs_are_out_of_scope(nlu: Understander, text: str) -> None:
    understanding = nlu.understand(text, now=NOW)
    assert understanding.intent is Intent.OUT_OF_SCOPE
    assert understanding.text == text


@pytest.mark.parametrize("text", ["", "   ", "😀🎉🙏", "？！", "2025"])
def test_no_letters_means_out_of_scope_at_once(nlu: Understander, text: str) -> None:
    understanding = nlu.understand(text, now=NOW)
    assert (understanding.intent, understanding.confidence, understanding.candidates) == (
        Intent.OUT_OF_SCOPE,
        1.0,
        (),
    )


@pytest.mark.parametrize(
    "text", ["在学証明書を2通", "forgot pw", "コンビニで払える？", "when can i pick it up", "ｗ", "研究室"]
)
def test_understanding_invariants(nlu: Understander, text: str) -> None:
    understanding = nlu.understand(text, now=NOW)
    assert isinstance(understanding, Understanding)
    assert 0.0 <= understanding.confidence <= 1.0
    assert len(understanding.candidates) == 3
    assert Intent.OUT_OF_SCOPE not in [intent for intent, _ in understanding.candidates]
    scores = [score for _, score in understanding.candidates]
    assert scores == sorted(scores, reverse=True)
    if understanding.intent is not Intent.OUT_OF_SCOPE:
        assert understanding.candidates[0] == (understanding.intent, understanding.confidence)
        assert understanding.confidence >= CONFIDENCE_THRESHOLD
    with pytest.raises(AttributeError):
        understanding.intent = Intent.GREET  # type: ignore[misc]


def test_unsure_answers_are_out_of_scope_with_candidates(nlu_model: IntentModel,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(understander_module, "CONFIDENCE_THRESHOLD", 1.01)
    fresh = Understander(nlu_model)  # not the session's, which keeps what it read before the threshold changed
    understanding = fresh.understand("第2パスワードを忘れたのでリセットしたい", now=NOW)
    assert understanding.intent is Intent.OUT_OF_SCOPE
    assert understanding.candidates[0][0] is Intent.SECOND_PASSWORD_RESET
    assert understanding.confidence == understanding.candidates[0][1]


def test_entities_and_now_reach_the_understanding(nlu: Understander) -> None:
    text = "明日の16時に窓口で在学証明書を２通受け取れますか"
    understanding = nlu.understand(text, now=NOW)
    by_type = {entity.type: entity.value for entity in understanding.entities}
    assert by_type[EntityType.DATETIME] == "2025-11-25T16:00:00+09:00"
    assert by_type[EntityType.COPIES] == 2
    for entity in understanding.entities:
        assert text[entity.start : entity.end] == entity.text


def test_a_message_read_again_is_read_for_its_own_day(nlu: Understander) -> None:
    # The understanding of a message is kept for the day (Asia/Tokyo) it was read on: the same words later that
    # day are the same understanding, the next day 「明日」 is another date.
    text = "明日窓口で受け取れますか"
    morning = nlu.understand(text, now=datetime(2025, 11, 24, 0, 30, tzinfo=TOKYO))
    evening = nlu.understand(text, now=datetime(2025, 11, 24, 23, 59, tzinfo=TOKYO))
    next_day = nlu.understand(text, now=datetime(2025, 11, 24, 15, 0, tzinfo=UTC))  # 0:00 on the 25th
    assert evening is morning
    assert [entity.value for entity in morning.entities if entity.type is EntityType.DATETIME] == ["2025-11-25"]
    assert [entity.value for entity in next_day.entities if entity.type is EntityType.DATETIME] == ["2025-11-26"]
    assert next_day.intent is morning.intent


def test_now_defaults_to_the_current_time(nlu: Understander) -> None:
    (entity,) = nlu.understand("today").entities
    assert entity.type is EntityType.DATETIME


def test_long_input_is_cut_before_work_but_kept_whole(nlu: Understander) -> None:
    text = "在学証明書を2通 " + "あ" * 20_000 + " 24M1001"
    understanding = nlu.understand(text, now=NOW)
    assert understanding.text == text
    assert all(entity.end <= MAX_INPUT_CHARS for entity in understanding.entities)
    assert EntityType.ITEM in {entity.type for entity in understanding.entities}


def test_thread_safe(nlu: Understander) -> None:
    texts = [text for _, _, text in SMOKE] * 5
    expected = [nlu.understand(text, now=NOW) for text in texts]
    barrier = threading.Barrier(4)

    def run(chunk: int) -> list[Understanding]:
        barrier.wait()
        return [nlu.understand(text, now=NOW) for text in texts[chunk::4]]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, range(4)))
    for chunk, result in enumerate(results):
        assert result == expected[chunk::4]


def test_fast_scoring_equals_sklearn(nlu_model: IntentModel) -> None:
    from scipy.sparse import hstack

    examples = load_examples()
    rows = [features(normalize(example.text)) for example in examples]
    vectorizers, calibrated = fit(rows, [example.label for example in examples])
    model = IntentModel.from_fitted(vectorizers, calibrated, data_hash="", example_counts={}, train_seconds=0.0,
                                    sklearn_version=nlu_model.sklearn_version)
    for text in ["在学証明書を2通", "how do i pay", "zzzz", "", "ログインできない pw", "🙏", "しはらいほうほう"]:
        row = features(normalize(text))
        matrix = hstack([vectorizer.transform([row.view(view)]) for view, vectorizer in vectorizers]).tocsr()
        assert np.allclose(model.probabilities(row), calibrated.predict_proba(matrix)[0], atol=1e-12)
    assert list(model.labels) == list(calibrated.classes_)
    assert "out_of_scope/campus" in model.labels and Intent.OUT_OF_SCOPE in model.classes


def test_out_of_scope_kinds_add_up_to_out_of_scope(nlu_model: IntentModel) -> None:
    row = features(normalize("学食は何時まで開いてますか"))
    probabilities = dict(zip(nlu_model.labels, nlu_model.probabilities(row), strict=True))
    scores = nlu_model.score(row)
    total = sum(p for label, p in probabilities.items() if label.startswith("out_of_scope/"))
    assert dict(scores.ranking)[Intent.OUT_OF_SCOPE] == pytest.approx(total)
    assert scores.out_of_scope_kind == "campus"
    assert sum(p for _, p in scores.ranking) == pytest.approx(1.0)


def test_saved_model_round_trips(nlu_model: IntentModel, nlu_model_path: Path) -> None:
    loaded = IntentModel.load(nlu_model_path)
    assert loaded.data_hash == nlu_model.data_hash
    row = features(normalize("成績証明書"))
    assert loaded.rank(row) == nlu_model.rank(row)


class _Trainer:
    """Stands in for training: hands out the session's model and counts the calls."""

    def __init__(self, model: IntentModel) -> None:
        self.model, self.calls = model, 0

    def __call__(self) -> IntentModel:
        self.calls += 1
        return self.model


@pytest.fixture
def trainer(nlu_model: IntentModel, monkeypatch: pytest.MonkeyPatch) -> _Trainer:
    fake = _Trainer(nlu_model)
    monkeypatch.setattr(understander_module, "train", fake)
    return fake


def test_load_trains_and_saves_when_the_file_is_missing(trainer: _Trainer, tmp_path: Path) -> None:
    path = tmp_path / "var" / "model.joblib"
    understander = load_understander(path)
    assert trainer.calls == 1
    assert path.is_file()
    assert understander.understand("在学証明書がほしい").intent is Intent.ORDER_CERTIFICATE


def test_load_uses_a_fresh_file_without_training(trainer: _Trainer, nlu_model_path: Path) -> None:
    load_understander(nlu_model_path)
    assert trainer.calls == 0


def test_load_retrains_a_model_of_other_data(trainer: _Trainer, nlu_model: IntentModel, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    IntentModel(**{**nlu_model.__getstate__(), "data_hash": "0" * 64}).save(path)
    understander = load_understander(path)
    assert trainer.calls == 1
    assert understander.model.data_hash == nlu_model.data_hash


def test_load_retrains_an_unreadable_file(trainer: _Trainer, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"not a model")
    load_understander(path)
    assert trainer.calls == 1


def test_load_defaults_to_the_configured_path(
    trainer: _Trainer, nlu_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.settings.get_settings", lambda: SimpleNamespace(nlu_model_path=nlu_model_path))
    load_understander()
    assert trainer.calls == 0


def test_a_fresh_saved_model_is_not_loaded_again_by_the_supervisor(nlu_model, tmp_path, monkeypatch):
    """`serve --workers N`: each worker loads the model; the supervisor only checks its stamp."""
    from intents import understander as module
    from intents.classifier import IntentModel, stamp_of

    path = tmp_path / "model.joblib"
    nlu_model.save(path)
    assert stamp_of(path).is_file()
    loads: list[object] = []
    monkeypatch.setattr(IntentModel, "load", staticmethod(lambda where: loads.append(where)))
    module.ensure_trained(path)
    assert loads == []


def test_a_stale_stamp_makes_the_supervisor_train_and_save(nlu_model, tmp_path, monkeypatch):
    from intents import understander as module
    from intents.classifier import stamp_of

    path = tmp_path / "model.joblib"
    nlu_model.save(path)
    stamp_of(path).write_text('{"data_hash": "older", "format_version": 0, "sklearn_version": "0"}')
    checked: list[object] = []
    monkeypatch.setattr(module, "load_understander", lambda where: checked.append(where))
    module.ensure_trained(path)
    assert checked == [path]
