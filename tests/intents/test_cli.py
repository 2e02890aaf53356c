"""`madoguchi nlu` through click's CliRunner: train, predict and eval."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from intents.cli import nlu

EVAL_ROWS = [
    {"text": "在学証明書を申請したいです", "intent": "order_certificate"},
    {"text": "第2パスワードを忘れたのでリセットしたい", "intent": "second_password_reset"},
    {"text": "can i pay by credit card", "intent": "payment_methods"},
    {"text": "学食のおすすめメニューは", "intent": "out_of_scope"},
    {"text": "😀", "intent": "out_of_scope"},
    {"text": "i want to talk to a human", "intent": "human_agent", "lang": "en"},
    {"text": "支払い方法と、学生支援課の電話番号を教えて", "intent": "payment_methods", "also": "contact"},
]


@pytest.fixture
def eval_file(tmp_path: Path) -> Path:
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in EVAL_ROWS) + "\n", encoding="utf-8")
    return path


def test_train_writes_the_model_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "model.joblib"
    result = CliRunner().invoke(nlu, ["train", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert "trained in" in result.output
    assert "order_certificate" in result.output


def test_train_defaults_to_the_configured_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nlu_model) -> None:
    path = tmp_path / "var" / "nlu-model.joblib"
    monkeypatch.setattr("core.settings.get_settings", lambda: SimpleNamespace(nlu_model_path=path))
    monkeypatch.setattr("intents.classifier.train", lambda data_dir=None: nlu_model)
    result = CliRunner().invoke(nlu, ["train"])
    assert result.exit_code == 0, result.output
    assert path.is_file()


def test_predict_prints_one_json_object_a_line(nlu_model_path: Path) -> None:
    stdin = "成績証明書を2通、明日コンビニで印刷したい\n\nforgot my second password\n"
    result = CliRunner().invoke(nlu, ["predict", "--model", str(nlu_model_path)], input=stdin)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 3
    first = lines[0]
    assert set(first) == {"text", "intent", "confidence", "candidates", "entities", "lang", "topics", "asides",
                          "out_of_scope_kind"}
    assert first["text"] == "成績証明書を2通、明日コンビニで印刷したい"
    assert first["lang"] == "ja"
    assert {entity["type"] for entity in first["entities"]} >= {"item", "copies", "datetime", "delivery_method"}
    for entity in first["entities"]:
        assert first["text"][entity["start"] : entity["end"]] == entity["text"]
    assert set(first["candidates"][0]) == {"intent", "confidence"}
    assert "成績証明書" in result.output  # ensure_ascii=False
    assert lines[1]["intent"] == "out_of_scope"
    assert lines[2]["intent"] == "second_password_reset"


def test_eval_prints_a_report(nlu_model_path: Path, eval_file: Path) -> None:
    result = CliRunner().invoke(nlu, ["eval", str(eval_file), "--model", str(nlu_model_path)])
    assert result.exit_code == 0, result.output
    for part in ("accuracy", "macro-F1", "out_of_scope recall", "p50", "p99", "precision", "recall",
                 "  ja: n    5", "  en: n    2", "two questions in one message: 1, both answered in order 1",
                 "confusion (rows: expected, columns: predicted"):
        assert part in result.output


def test_eval_counts_mistakes_per_language_and_in_the_confusion_table(nlu_model_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "wrong.jsonl"
    rows = [{"text": "支払い方法を教えて", "intent": "refund"}, {"text": "how can i pay", "intent": "payment_methods"}]
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows), encoding="utf-8")
    report = json.loads(CliRunner().invoke(nlu, ["eval", str(path), "--json", "--model", str(nlu_model_path)]).output)
    assert report["by_lang"]["ja"]["accuracy"] == 0.0 and report["by_lang"]["en"]["accuracy"] == 1.0
    assert report["confusion"]["refund"] == {"payment_methods": 1}
    assert report["confusions"] == [{"expected": "refund", "predicted": "payment_methods", "count": 1}]


def test_eval_json(nlu_model_path: Path, eval_file: Path) -> None:
    result = CliRunner().invoke(nlu, ["eval", str(eval_file), "--json", "--model", str(nlu_model_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == len(EVAL_ROWS)
    assert report["accuracy"] == 1.0
    assert report["oos_recall"] == 1.0
    assert report["macro_f1"] == 1.0
    assert 0 < report["latency_ms_p50"] <= report["latency_ms_p99"]
    assert report["per_intent"]["out_of_scope"]["recall"] == 1.0
    assert report["confusions"] == []
    assert report["topics"] == {"n": 1, "both_found": 1, "second_found": 1, "second_offered": 0}


def test_eval_refuses_lines_without_labels(nlu_model_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "hello"}\n', encoding="utf-8")
    result = CliRunner().invoke(nlu, ["eval", str(path), "--model", str(nlu_model_path)])
    assert result.exit_code != 0
    assert "needs text and intent" in result.output
