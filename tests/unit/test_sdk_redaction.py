"""Redaction of captured content against a broad sample of real-shaped secrets (issue 13, item 8).

The samples are made at run time from each vendor's documented prefix and alphabet (seeded, so the
run repeats), never written out: no key-shaped literal sits in the repository.  Yelp's detect-secrets,
the best-kept importable detector set, is the oracle: whatever its regex detectors flag in a sample,
our redaction must remove too.
"""

from __future__ import annotations

import random
import string

import pytest
from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import RegexBasedDetector

from rag_otel.config import Content
from rag_otel.sdk.content import ContentPolicy

RNG = random.Random(13)
ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
URLSAFE = ALNUM + "-_"


def r(n: int, alphabet: str = ALNUM) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


# (name, secret): each is embedded in a sentence below and must not survive redaction
SAMPLES: list[tuple[str, str]] = [
    ("stripe secret live", "sk_" + "live_" + r(24)),
    ("stripe secret test", "sk_" + "test_" + r(24)),
    ("stripe restricted", "rk_" + "live_" + r(24)),
    ("stripe webhook", "whsec_" + r(32)),
    ("google api key", "AIza" + r(35, URLSAFE)),
    ("google oauth token", "ya29." + r(60, URLSAFE)),
    ("google oauth client secret", "GOCSPX-" + r(28, URLSAFE)),
    ("openai legacy", "sk-" + r(48)),
    ("openai project", "sk-proj-" + r(40, URLSAFE) + "T3BlbkFJ" + r(40, URLSAFE)),
    ("openai service account", "sk-svcacct-" + r(60, URLSAFE)),
    ("anthropic", "sk-ant-api03-" + r(93, URLSAFE) + "AA"),
    ("hugging face", "hf_" + r(34)),
    ("groq", "gsk_" + r(52)),
    ("xai", "xai-" + r(80)),
    ("perplexity", "pplx-" + r(48)),
    ("replicate", "r8_" + r(37)),
    ("aws access key id", "AKIA" + r(16, UPPER_DIGITS)),
    ("aws session key id", "ASIA" + r(16, UPPER_DIGITS)),
    ("github classic", "ghp_" + r(36)),
    ("github fine-grained", "github_pat_" + r(22) + "_" + r(59)),
    ("github app", "ghs_" + r(36)),
    ("gitlab", "glpat-" + r(20, URLSAFE)),
    ("slack bot", "xoxb-" + r(11, string.digits) + "-" + r(13, string.digits) + "-" + r(24)),
    ("slack webhook", f"https://hooks.slack.com/services/T{r(8, UPPER_DIGITS)}/B{r(8, UPPER_DIGITS)}/{r(24)}"),
    ("sendgrid", "SG." + r(22, URLSAFE) + "." + r(43, URLSAFE)),
    ("twilio", "SK" + r(32, HEX)),
    ("mailchimp", r(32, HEX) + "-us" + str(RNG.randint(1, 20))),
    ("npm", "npm_" + r(36)),
    ("pypi", "pypi-AgEIcHlwaS5vcmc" + r(70, URLSAFE)),
    ("square", "sq0csp-" + r(43, URLSAFE)),
    ("shopify", "shpat_" + r(32, HEX)),
    ("discord bot", "M" + r(25, URLSAFE) + "." + r(6, URLSAFE) + "." + r(38, URLSAFE)),
    ("telegram bot", r(10, string.digits) + ":AA" + r(33, URLSAFE)),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9." + r(40, URLSAFE) + "." + r(43, URLSAFE)),
    ("azure storage", "AccountKey=" + r(86, ALNUM + "+/") + "=="),
]
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(r(64, ALNUM + "+/") for _ in range(4)) + \
              "\n-----END RSA PRIVATE KEY-----"
# (text, secret part): the secret is what must go, the rest tells the reader what was there
IN_CONTEXT = [
    (f"connect with postgresql://app:{r(16)}@db.internal:5432/rag", "postgresql://app:"),
    (f"set api_key={r(32)} in the env file", "api_key"),
    (f'"client_secret": "{r(40, URLSAFE)}"', "client_secret"),
    (f"aws_secret_access_key = {r(40, ALNUM + '/+')}", "aws_secret_access_key"),
    (f"Authorization: Bearer {r(40, URLSAFE)}", "Authorization"),
]
PROSE = [  # must come out unchanged: redaction is not allowed to eat ordinary answers
    "Paris is the capital of France; it has about 2.1 million inhabitants.",
    "Set OPENAI_API_KEY in your shell, then run `pip install rag-otel==0.1.0`.",
    "The commit 3f5e2a1 fixed the skeleton key bug in the sk-learn wrapper.",
    "See https://docs.example.com/guide?page=2#install for the steps.",
    "Order 12345 shipped on 2024-05-01 at 14:30 UTC.",
    "Use the AKIA prefix to tell an access key id from a secret.",
]


@pytest.fixture(scope="module")
def policy() -> ContentPolicy:
    return ContentPolicy(Content(capture="full"))


@pytest.mark.parametrize(("name", "secret"), SAMPLES, ids=[n for n, _ in SAMPLES])
def test_every_sample_secret_is_redacted(policy: ContentPolicy, name: str, secret: str) -> None:
    text = f"my {name} is {secret} - keep it safe"
    out = policy.redact(text)
    assert secret not in out and "[REDACTED:" in out, out
    assert out.startswith(f"my {name} is ") and out.endswith(" - keep it safe")  # only the secret went


def test_a_private_key_block_is_redacted_whole(policy: ContentPolicy) -> None:
    out = policy.redact(f"here:\n{PRIVATE_KEY}\nthanks")
    assert out == "here:\n[REDACTED:private_key]\nthanks"


@pytest.mark.parametrize(("text", "kept"), IN_CONTEXT, ids=[k for _, k in IN_CONTEXT])
def test_secrets_in_context_lose_the_value_and_keep_the_name(policy: ContentPolicy, text: str, kept: str) -> None:
    out = policy.redact(text)
    assert kept in out and "[REDACTED:" in out
    secret = text.split(kept)[1]
    assert not any(len(part) >= 12 and part in out for part in secret.replace("=", " ").replace(":", " ").split())


@pytest.mark.parametrize("text", PROSE)
def test_ordinary_prose_is_left_alone(policy: ContentPolicy, text: str) -> None:
    assert policy.redact(text) == text


def test_whatever_detect_secrets_flags_is_redacted_too(policy: ContentPolicy) -> None:
    detectors = [cls() for cls in get_mapping_from_secret_type_to_class().values()
                 if issubclass(cls, RegexBasedDetector) and cls.__name__ != "IPPublicDetector"]
    texts = [f"value {s} end" for _, s in SAMPLES] + [t for t, _ in IN_CONTEXT] + [PRIVATE_KEY]
    flagged = 0
    for text in texts:
        out = policy.redact(text)
        for d in detectors:
            for found in d.analyze_string(text):
                flagged += 1
                if len(found) >= 8:  # (a few detectors report a short keyword, e.g. "BEGIN RSA PRIVATE KEY")
                    assert found not in out or "PRIVATE KEY" in found, (d.secret_type, found, out)
    assert flagged >= 20  # the oracle really looked at the samples
