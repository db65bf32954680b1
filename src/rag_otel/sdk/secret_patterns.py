"""The secret and personal-data shapes redacted from captured content: one documented list.

Why our own list and not a package's: the best-kept importable set on PyPI, Yelp's ``detect-secrets``,
is built to scan source code.  Loading its detectors costs ~0.75 s at import (too much for the app
side, which must stay light), several of them flag ordinary prose or addresses (public IPs, high
entropy words), and it has no pattern for Google API keys (``AIza…``), Anthropic, Hugging Face,
Groq or xAI keys, all of which a RAG app's users paste into chats.  So the shapes live here, with
their vendor's documented prefixes, and the test suite keeps us honest against it:
``tests/unit/test_sdk_redaction.py`` checks that every sample ``detect-secrets`` flags (it is a
dev dependency) is redacted here too, and a broad sample of real-shaped keys besides.

Each entry is (label, pattern).  A pattern with a capturing group redacts only the group (the
password in ``https://user:pw@host``, the value after ``api_key=``), keeping what tells a reader
what was there.  Order matters: specific token shapes before the generic ones, and the long-digit
card rule (Luhn-checked by the caller) and phone numbers last.
"""

from __future__ import annotations

# (label, pattern, anchors): the pattern is tried only when the lower-cased text contains one of its anchors
# (a substring search costs a fraction of a regex pass; no anchors: always tried)
SECRET_PATTERNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # private keys first: their body would otherwise be eaten piecemeal by the generic rules
    ("private_key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                    r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)", ("private key",)),
    ("private_key", r"PuTTY-User-Key-File-\d: [\s\S]*?Private-MAC: [0-9a-f]+", ("putty-user-key-file",)),
    # model providers
    ("api_key", r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{20,}", ("sk-ant-",)),  # Anthropic
    ("api_key", r"\b(?:sk|pk|rk)-(?:proj-|svcacct-|admin-|live-|test-)?[A-Za-z0-9_-]{16,}",
     ("sk-", "pk-", "rk-")),  # OpenAI and alike
    ("api_key", r"\bhf_[A-Za-z0-9]{30,}\b", ("hf_",)),  # Hugging Face
    ("api_key", r"\bgsk_[A-Za-z0-9]{40,}\b", ("gsk_",)),  # Groq
    ("api_key", r"\bxai-[A-Za-z0-9]{40,}\b", ("xai-",)),  # xAI
    ("api_key", r"\bpplx-[A-Za-z0-9]{40,}\b", ("pplx-",)),  # Perplexity
    ("api_key", r"\br8_[A-Za-z0-9]{30,}\b", ("r8_",)),  # Replicate
    # clouds
    ("api_key", r"\bAIza[0-9A-Za-z_-]{35}", ("aiza",)),  # Google API key (Maps, Gemini, Firebase...)
    ("token", r"\bya29\.[0-9A-Za-z_-]{20,}", ("ya29.",)),  # Google OAuth access token
    ("api_key", r"\bGOCSPX-[A-Za-z0-9_-]{20,}", ("gocspx-",)),  # Google OAuth client secret
    ("api_key", r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
     ("a3t", "akia", "asia", "abia", "acca")),  # AWS access key id
    ("api_key", r"(?i)aws.{0,20}?(?:secret|key|token).{0,20}?[\"'=:\s]([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
     ("aws",)),  # AWS secret access key, named as such
    ("api_key", r"AccountKey=([A-Za-z0-9+/=]{86,88})", ("accountkey=",)),  # Azure storage
    ("api_key", r"\bSharedAccessSignature=[^\s;\"']+|\bsig=[A-Za-z0-9%+/=]{40,}",
     ("sharedaccesssignature=", "sig=")),  # Azure SAS
    # payments, code hosts, chat, mail, registries
    ("api_key", r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{10,}", ("_live_", "_test_")),  # Stripe
    ("api_key", r"\bwhsec_[A-Za-z0-9]{20,}", ("whsec_",)),  # Stripe webhook secret
    ("api_key", r"\bsq0(?:csp|atp)-[0-9A-Za-z_-]{22,}", ("sq0",)),  # Square
    ("api_key", r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b", ("shp",)),  # Shopify
    ("api_key", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})",
     ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),  # GitHub
    ("api_key", r"\b(?:glpat|gldt|glft|glsoat|glrt|glcbt|glimt|glptt|glagent|gloas)-[A-Za-z0-9_-]{20,}",
     ("gl",)),  # GitLab
    ("api_key", r"\bxox[abposre]-[A-Za-z0-9-]{10,}", ("xox",)),  # Slack tokens
    ("token", r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+",
     ("hooks.slack.com",)),
    ("token", r"https://discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]+", ("discord",)),
    ("token", r"\b[MNO][A-Za-z\d_-]{23,25}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,}\b", ()),  # Discord bot
    ("token", r"\b\d{8,10}:AA[0-9A-Za-z_-]{33}\b", (":aa",)),  # Telegram bot
    ("api_key", r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b", ("sg.",)),  # SendGrid
    ("api_key", r"\b[0-9a-f]{32}-us\d{1,2}\b", ("-us",)),  # Mailchimp
    ("api_key", r"\b(?:AC|SK)[0-9a-f]{32}\b", ("ac", "sk")),  # Twilio
    ("api_key", r"\bnpm_[A-Za-z0-9]{36}\b", ("npm_",)),  # npm
    ("api_key", r"\bpypi-AgE[A-Za-z0-9_-]{50,}", ("pypi-",)),  # PyPI
    # generic shapes
    ("token", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", ("eyj",)),  # JWT
    ("token", r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*", ("bearer",)),
    ("password", r"\b[a-z][a-z0-9+.-]*://[^:/?#\s@]+:([^/?#\s@]+)@", ("://",)),  # user:password@ in a URL
    ("secret", r"(?i)\b(?:api[_-]?key|api[_-]?secret|client[_-]?secret|secret[_-]?key|access[_-]?key|"
               r"auth[_-]?token|access[_-]?token|password|passwd|pwd)\b[\"']?\s*[:=]\s*[\"']?([^\s\"',;]{8,})",
     ("key", "secret", "token", "passw", "pwd")),
    # personal data
    ("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", ("@",)),
    ("card", r"\b(?:\d[ -]?){12,18}\d\b", ()),
    ("phone", r"(?<![\w])\+?\d{1,3}[ .-]?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}(?![\w])", ()),
)
