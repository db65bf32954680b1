"""The lexical scorer's rules are English: on other languages it says so instead of inventing scores.

Real texts in a dozen languages; English that must never be taken for another language (one-word answers,
numbers, code, commands, URLs, product and place names, tables, lists).
"""

from __future__ import annotations

import pytest

from rag_otel.config import ConfigError, QualityAssessment, load_config
from rag_otel.quality import build_scorer
from rag_otel.quality.base import NotJudged, Query
from rag_otel.quality.embedding import EmbeddingBackend
from rag_otel.quality.lexical import LexicalBackend
from rag_otel.quality.text import ENGLISH, OTHER_LATIN, OTHER_SCRIPT

ZH_QUESTION = "如何重置密码？"
ZH_ANSWER = "您可以在设置页面点击“忘记密码”来重置密码。"
ZH_WRONG = "我们的办公室在北京，周末不营业，欢迎随时来喝茶。"
ZH_SOURCES = ["要重置密码，请打开设置页面并点击“忘记密码”。系统会发送一封邮件。"]

DE_QUESTION = "Wie kann ich mein Passwort zurücksetzen?"
DE_ANSWER = ("Öffnen Sie die Einstellungen und klicken Sie auf „Passwort vergessen“. Sie erhalten dann eine "
             "E-Mail mit einem Link, mit dem Sie ein neues Passwort festlegen können.")
DE_SOURCES = ["Um das Passwort zurückzusetzen, öffnen Sie die Einstellungen und klicken Sie auf „Passwort "
              "vergessen“. Das System sendet Ihnen eine E-Mail mit einem Link für ein neues Passwort."]

ES_QUESTION = "¿Cuántos días tengo para devolver un producto?"
ES_ANSWER = "Tiene 30 días para devolver el producto, siempre que esté sin usar y en su caja original."
ES_SOURCES = ["Los productos se pueden devolver en un plazo de 30 días desde la entrega, sin usar y en su "
              "caja original. El reembolso se hace en 5 días hábiles."]

OTHER_LANGUAGES = [
    (ZH_QUESTION, ZH_ANSWER, OTHER_SCRIPT),
    ("パスワードをリセットするには？", "設定ページで「パスワードを忘れた」をクリックしてください。", OTHER_SCRIPT),
    ("Pythonのインストール方法は？", "公式サイトからPython 3.12のインストーラーをダウンロードして実行します。",
     OTHER_SCRIPT),
    ("비밀번호를 어떻게 재설정하나요?", "설정 페이지에서 '비밀번호 찾기'를 클릭하세요.", OTHER_SCRIPT),
    ("Как сбросить пароль?", "Откройте настройки и нажмите «Забыли пароль». Используйте pip install rag-otel.",
     OTHER_SCRIPT),
    ("كيف أعيد تعيين كلمة المرور؟", "افتح الإعدادات وانقر على نسيت كلمة المرور.", OTHER_SCRIPT),
    ("如何在 Kubernetes 中配置 Ingress 的 TLS 证书？", "在 Ingress 资源的 spec.tls 中引用包含证书的 Secret。",
     OTHER_SCRIPT),
    (ES_QUESTION, ES_ANSWER, OTHER_LATIN),
    ("¿Es gratis el envío?", "Sí.", OTHER_LATIN),
    (DE_QUESTION, DE_ANSWER, OTHER_LATIN),
    ("Comment réinitialiser mon mot de passe ?", "Cliquez sur « Mot de passe oublié » dans les paramètres.",
     OTHER_LATIN),
    ("Come reimposto la password?", "Apri le impostazioni e fai clic su \"Password dimenticata\" nella pagina.",
     OTHER_LATIN),
    ("Hoe stel ik mijn wachtwoord opnieuw in?", "Open de instellingen en klik op 'Wachtwoord vergeten' in het menu.",
     OTHER_LATIN),
    ("How do I reset my password?", "Abra as configurações e clique em \"Esqueci minha senha\" na página de login.",
     OTHER_LATIN),  # an English question answered in Portuguese: the answer cannot be judged by English rules
]

ENGLISH_ANYWAY = [
    ("Is it free?", "Yes."),
    ("How many seats are there?", "42"),
    ("Max upload size?", "10 MB"),
    ("How do I list hidden files?", "`ls -la`"),
    ("Install command?", "pip install -U rag-otel"),
    ("Where is the Spanish help page?", "https://example.com/es/ayuda/para-empresas/"),
    ("Which phone should I buy?", "The Xiaomi 小米 14 or the Samsung Galaxy S24 — both are great."),
    ("What is the price?", "The 小米手环 8 costs 300 yuan in China."),
    ("Best dessert there?", "Try the 'Tarta de la Abuela' or the crème brûlée."),
    ("Flights?", "Daily from Los Angeles to Las Vegas and El Paso."),
    ("Show the loop.", "```python\nfor el in items:\n    print(el, que, la)\n```"),
    ("Plans?", "| plan | price |\n|---|---|\n| basic | $10 |\n| pro | $25 |"),
    ("Steps?", "1. Open Settings\n2. Click Reset\n3. Confirm"),
    ("Who wrote Der Spiegel's piece?", "Der Spiegel's editor, Dirk Kurbjuweit."),
    ("What does 'c'est la vie' mean?", "It means “that’s life” in French."),
    ("Where do I buy the “Dolce Vita” set?", "The Dolce Vita set is sold in our Milan store, Via della Spiga 5."),
    ("Config key?", "`quality_assessment.non_english: approximate`"),
    ("What is the capital of Russia?", "Moscow (Москва) is the capital of Russia."),
]


def kind(question: str, answer: str) -> str:
    return Query(question, answer, []).language


@pytest.mark.parametrize(("question", "answer", "expected"), OTHER_LANGUAGES)
def test_other_languages_are_recognised(question: str, answer: str, expected: str) -> None:
    assert kind(question, answer) == expected


@pytest.mark.parametrize(("question", "answer"), ENGLISH_ANYWAY)
def test_short_technical_and_name_dropping_english_stays_english(question: str, answer: str) -> None:
    assert kind(question, answer) == ENGLISH


@pytest.fixture
def scorer():
    return build_scorer(QualityAssessment())


def test_a_chinese_answer_is_not_given_invented_scores(scorer) -> None:
    """Before: accuracy 1.0 and consistency 1.0 for the right answer and for an unrelated one alike."""
    for answer in (ZH_ANSWER, ZH_WRONG):
        r = scorer.score(ZH_QUESTION, answer, ZH_SOURCES)
        assert r.status == "unsupported_language"
        assert r.axes == {} and r.overall is None and r.grade is None and r.evaluator == ""


def test_numbers_are_still_checked_in_chinese(scorer) -> None:
    sources = ["重置密码的链接在 30 分钟内有效。"]
    right = scorer.score("重置链接多久有效？", "链接在 30 分钟内有效。", sources)
    wrong = scorer.score("重置链接多久有效？", "链接在 24 小时内有效，请在 2 天内使用。", sources)
    assert set(right.axes) == set(wrong.axes) == {"consistency"}  # nothing else is judged
    assert right.status == wrong.status == "scored"
    assert right.axes["consistency"].score == 1.0 and right.overall == 1.0
    assert wrong.axes["consistency"].score == pytest.approx(1 / 3, abs=1e-4)
    why = wrong.axes["consistency"].explanation
    assert why == ("2 of the answer's 2 number(s) not in the sources "
                   "(the text is not English (non-Latin script): only numbers are checked)")
    assert right.axes["consistency"].explanation.startswith("0 of the answer's 1 number(s) not in the sources")


def test_a_german_answer_is_not_marked_incomplete_by_english_rules(scorer) -> None:
    """Before: completeness 0.14 and relevance 0.42 for this correct answer (German function words as content)."""
    r = scorer.score(DE_QUESTION, DE_ANSWER, DE_SOURCES)
    assert r.status == "unsupported_language" and r.axes == {}


def test_spanish_numbers_are_checked_and_the_rest_left_out(scorer) -> None:
    r = scorer.score(ES_QUESTION, ES_ANSWER, ES_SOURCES)
    assert set(r.axes) == {"consistency"} and r.axes["consistency"].score == 1.0
    assert "Latin-script language other than English" in r.axes["consistency"].explanation
    wrong = scorer.score(ES_QUESTION, ES_ANSWER.replace("30", "60"), ES_SOURCES)
    assert wrong.axes["consistency"].score == 0.5
    assert wrong.axes["consistency"].explanation.startswith("1 of the answer's 1 number(s) not in the sources")
    assert scorer.score(ES_QUESTION, ES_ANSWER, []).status == "unsupported_language"  # no sources: nothing to check


def test_approximate_scores_latin_script_languages_by_the_english_rules() -> None:
    approx = build_scorer(QualityAssessment(non_english="approximate"))
    r = approx.score(DE_QUESTION, DE_ANSWER, DE_SOURCES)
    assert r.status == "scored" and set(r.axes) == {"accuracy", "completeness", "relevance", "consistency"}
    # exactly the English rules' numbers, as before the language check
    raw = LexicalBackend("approximate").score(Query(DE_QUESTION, DE_ANSWER, DE_SOURCES), list(r.axes))
    assert {a: s.score for a, s in r.axes.items()} == {a: round(v[0], 4) for a, v in raw.items()}
    # never for another script: the tokenizer does not see its words
    assert approx.score(ZH_QUESTION, ZH_WRONG, ZH_SOURCES).status == "unsupported_language"


def test_english_is_scored_the_same_whatever_non_english_says(scorer) -> None:
    approx = build_scorer(QualityAssessment(non_english="approximate"))
    for q, a in ENGLISH_ANYWAY:
        one, two = scorer.score(q, a, [a]), approx.score(q, a, [a])
        assert one.status == "scored" and (one.axes, one.overall) == (two.axes, two.overall)


def test_the_embedding_backend_does_not_judge_other_languages_nor_loads_its_model() -> None:
    backend = EmbeddingBackend()
    out = backend.score(Query(ZH_QUESTION, ZH_ANSWER, ZH_SOURCES), ["relevance", "completeness", "accuracy"])
    assert all(isinstance(v, NotJudged) and "English-only" in v for v in out.values())
    assert backend._model is None and backend._error is None
    s = build_scorer(QualityAssessment())
    s.backends["relevance"] = backend  # as an embedding config would have it, without loading torch
    assert s.score(ZH_QUESTION, ZH_ANSWER, ZH_SOURCES).status == "unsupported_language"
    approx = build_scorer(QualityAssessment(non_english="approximate"))
    approx.backends["relevance"] = backend
    rel = approx.score(DE_QUESTION, DE_ANSWER, DE_SOURCES).axes["relevance"]
    assert rel.evaluator.startswith("lexical") and rel.explanation.startswith("(embedding: the text is not English")


def test_the_setting_is_validated_and_read_from_yaml(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model_observation:\n  quality_assessment:\n    non_english: approximate\n")
    assert load_config(path).quality_assessment.non_english == "approximate"
    path.write_text("model_observation:\n  quality_assessment:\n    non_english: guess\n")
    with pytest.raises(ConfigError, match=r"quality_assessment\.non_english"):
        load_config(path)
    assert QualityAssessment().non_english == "not_judged"
