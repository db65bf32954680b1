"""Redaction cost of captured content: the full secret-pattern set beside personal data only, same run.

Run: ``.venv/bin/python bench/bench_redaction.py [--repeats 7]``

Three 10 kB texts (prose, a technical answer full of "key"/"token"/"password" words that wake
most patterns' anchors, and one with a dozen real-shaped secrets), each redacted by the
``ContentPolicy`` the SDK uses and by the same code with only the e-mail, card and phone patterns
(what a redactor without a secret list does), alternated; medians of ``--repeats`` rounds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rag_otel.config import Content  # noqa: E402
from rag_otel.sdk import content as content_mod  # noqa: E402
from rag_otel.sdk.content import ContentPolicy  # noqa: E402

RNG = random.Random(1)


def _r(n: int) -> str:
    return "".join(RNG.choice(string.ascii_letters + string.digits) for _ in range(n))


TEXTS = {
    "prose": ("Paris is the capital of France. It hosts the Louvre, and my email is bob@example.com. " * 130)[:10_000],
    "technical": ("To rotate the API key, open Settings > Tokens, copy the new secret and set api_key in .env; "
                  "the password must be 12+ chars. Call +1 415 555 0100 or see https://docs.example.com. "
                  * 70)[:10_000],
    "secrets": (" ".join(f"key {i}: sk_live_{_r(24)} and AIza{_r(35)} and ghp_{_r(36)}." for i in range(12))
                + " filler text." * 800)[:10_000],
}


def timed(policy: ContentPolicy, text: str, n: int = 40) -> float:
    t = time.perf_counter()
    for _ in range(n):
        policy.redact(text)
    return (time.perf_counter() - t) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round")
    a = ap.parse_args()
    full = ContentPolicy(Content(capture="full"))
    pii_only = ContentPolicy(Content(capture="full"))
    pii_only._patterns = [p for p in pii_only._patterns if p[0] in ("email", "card", "phone")]
    rounds = 1 if a.quick else a.repeats
    res: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, text in TEXTS.items():
            for label, policy in (("pii", pii_only), ("full", full)):
                res.setdefault((name, label), []).append(timed(policy, text))
    print(f"{len(content_mod._BUILTIN_PATTERNS)} patterns; medians of {rounds} rounds, ms per 10 kB text")
    print("| text | personal data only (3 patterns) | full set | ratio |")
    print("|---|---:|---:|---:|")
    for name in TEXTS:
        pii, fs = statistics.median(res[(name, "pii")]), statistics.median(res[(name, "full")])
        print(f"| {name} | {pii:.2f} | {fs:.2f} | {fs / pii:.2f} |")


if __name__ == "__main__":
    main()
