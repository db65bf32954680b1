"""What ``/health`` may show of the configuration: it is public (no token), so nothing secret.

Export URLs can carry credentials (``https://user:key@apm.example/…``, ``?api_key=…``): the user
info and every query value are replaced by ``***``; scheme, host, port and path stay, which is what
an operator needs to tell the endpoints apart.  Header values (where tokens belong) are never shown.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"


def redact_url(url: str) -> str:
    """``url`` without its credentials: user info and query values masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = parts.port
    except ValueError:  # not a URL we can take apart: show none of it
        return MASK
    netloc = (f"{MASK}@" if parts.username or parts.password else "") + host + (f":{port}" if port else "")
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
