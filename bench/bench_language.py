"""Is the text English? The scorer's own check against language-identification libraries: cost and answers.

    .venv/bin/python bench/bench_language.py [--libs PATH] [--n 2000]

The scorer asks this of every query (question and answer), so it must cost next to nothing beside the
~110-200 µs of lexical scoring, and it must never call short or technical English foreign. Timed per query,
medians of the fastest of 3 (thread CPU time), on: (a) English calibration rows (BEGIN, HaluEval, HaluQuestQA
with its long answers), (b) short and technical English (answers such as "Yes.", "42", commands, code, URLs,
tables), (c) a dozen languages. The scorer's check is timed with the analyses it reuses already made (the
axes make them anyway); a library gets the question and answer as one text. Libraries are optional
(``--libs`` adds a folder they were installed into with ``pip install --target``): pycld2 (CLD2),
lingua-language-detector (low-accuracy mode), py3langid. Reported: µs per query and how many queries of
each set each one calls English.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

import quality_calibration as cal  # noqa: E402

from rag_otel.quality.base import Query  # noqa: E402
from rag_otel.quality.text import ENGLISH, language  # noqa: E402

Pair = tuple[str, str]

ENGLISH_TECHNICAL: list[Pair] = [
    ("Is it free?", "Yes."), ("How many seats are there?", "42"), ("Max upload size?", "10 MB"),
    ("How do I list hidden files?", "`ls -la`"), ("Install command?", "pip install -U rag-otel"),
    ("Where is the Spanish help page?", "https://example.com/es/ayuda/para-empresas/"),
    ("Which phone should I buy?", "The Xiaomi 小米 14 or the Samsung Galaxy S24."),
    ("Best dessert there?", "Try the 'Tarta de la Abuela' or the crème brûlée."),
    ("Flights?", "Daily from Los Angeles to Las Vegas and El Paso."),
    ("Show the loop.", "```python\nfor el in items:\n    print(el, que, la)\n```"),
    ("Plans?", "| plan | price |\n|---|---|\n| basic | $10 |\n| pro | $25 |"),
    ("Steps?", "1. Open Settings\n2. Click Reset\n3. Confirm"),
    ("Who wrote Der Spiegel's piece?", "Der Spiegel's editor, Dirk Kurbjuweit."),
    ("What does 'c'est la vie' mean?", "It means \"that's life\" in French."),
    ("Config key?", "`quality_assessment.non_english: approximate`"),
]
FOREIGN: list[Pair] = [
    ("如何重置密码？", "您可以在设置页面点击“忘记密码”来重置密码。"),
    ("パスワードをリセットするには？", "設定ページで「パスワードを忘れた」をクリックしてください。"),
    ("비밀번호를 어떻게 재설정하나요?", "설정 페이지에서 '비밀번호 찾기'를 클릭하세요."),
    ("Как сбросить пароль?", "Откройте настройки и нажмите «Забыли пароль»."),
    ("كيف أعيد تعيين كلمة المرور؟", "افتح الإعدادات وانقر على نسيت كلمة المرور."),
    ("Πώς επαναφέρω τον κωδικό μου;", "Ανοίξτε τις ρυθμίσεις και πατήστε «Ξέχασα τον κωδικό»."),
    ("¿Cómo restablezco mi contraseña?", "Puede restablecer su contraseña desde la página de configuración."),
    ("Wie setze ich mein Passwort zurück?", "Öffnen Sie die Einstellungen und klicken Sie auf „Passwort vergessen“."),
    ("Comment réinitialiser mon mot de passe ?", "Cliquez sur « Mot de passe oublié » dans les paramètres."),
    ("Come reimposto la password?", "Apri le impostazioni e fai clic su \"Password dimenticata\" nella pagina."),
    ("Como redefino minha senha?", "Abra as configurações e clique em \"Esqueci minha senha\" na página."),
    ("Hoe stel ik mijn wachtwoord opnieuw in?", "Open de instellingen en klik op 'Wachtwoord vergeten' in het menu."),
]


def english_rows(n: int) -> list[Pair]:
    rows = [*cal.begin(), *cal.halueval(), *cal.haluquestqa()]
    return [(e.question, e.answer) for e in rows if e.question.strip() and e.answer.strip()][:n]


def cpu_us(fn: Callable[[], object], k: int = 5) -> float:
    """Thread CPU µs of one call: ``k`` calls per reading (the clock costs about a µs itself), fastest of 3."""
    best = float("inf")
    for _ in range(3):
        t0 = time.thread_time_ns()
        for _ in range(k):
            fn()
        best = min(best, time.thread_time_ns() - t0)
    return best / k / 1000


def ours() -> Callable[[str, str], bool]:
    def english(q: str, a: str) -> bool:
        query = Query(q, a, [])
        return language(query.question, query.answer, query.q, query.a) == ENGLISH
    return english


def libraries() -> dict[str, Callable[[str, str], bool]]:
    out: dict[str, Callable[[str, str], bool]] = {}
    try:
        import pycld2

        out["pycld2"] = lambda q, a: pycld2.detect(f"{q}\n{a}")[2][0][1] in ("en", "un")
    except ImportError:
        pass
    try:
        from lingua import Language, LanguageDetectorBuilder

        det = LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()
        out["lingua (low accuracy)"] = lambda q, a: det.detect_language_of(f"{q}\n{a}") in (Language.ENGLISH, None)
    except ImportError:
        pass
    try:
        import py3langid

        out["py3langid"] = lambda q, a: py3langid.classify(f"{q}\n{a}")[0] == "en"
    except ImportError:
        pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--libs", type=Path, help="folder the optional libraries were pip-installed into (--target)")
    ap.add_argument("--n", type=int, default=2000, help="English calibration rows")
    args = ap.parse_args()
    if args.libs:
        sys.path.insert(0, str(args.libs))
    sets = {"English rows": english_rows(args.n), "short/technical English": ENGLISH_TECHNICAL,
            "other languages": FOREIGN}
    checks: dict[str, Callable[[str, str], bool]] = {"scorer's check": ours(), **libraries()}
    for fn in checks.values():  # warm-up: lazy model loads, memos
        for rows in sets.values():
            for q, a in rows[:50]:
                fn(q, a)
    print(f"{'check':24} {'set':26} {'n':>5} {'median µs':>10} {'p90 µs':>8} {'called English':>15}")
    for name, fn in checks.items():
        for set_name, rows in sets.items():
            times, english = [], 0
            for q, a in rows:
                english += fn(q, a)
                if name == "scorer's check":  # the analyses are made once (the axes make them anyway)
                    query = Query(q, a, [])
                    args_ = (query.question, query.answer, query.q, query.a)
                    times.append(cpu_us(lambda args_=args_: language(*args_), k=20))
                else:
                    times.append(cpu_us(lambda q=q, a=a, fn=fn: fn(q, a)))
            times.sort()
            print(f"{name:24} {set_name:26} {len(rows):5} {statistics.median(times):10.2f} "
                  f"{times[int(len(times) * 0.9)]:8.2f} {english:>8}/{len(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
