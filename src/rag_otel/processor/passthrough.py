"""Which spans the normalizer need not read: the plumbing of a request, not its RAG work.

A real trace is mostly not GenAI: the per-chunk ``http send`` spans of a streamed answer, HTTP
client calls, database queries.  Reading a span's attributes costs several microseconds in Python;
deciding from its instrumentation scope (read once per received ScopeSpans) costs almost nothing.

The rule is a **deny list**, not an allow list: a span is passed over only when its scope is one of
the OpenTelemetry instrumentations below, which write HTTP/database attributes and never GenAI
attributes or content, it is not a SERVER span, and no app code runs under it (below).  Everything
else is read as before: our scopes, the GenAI instrumentations (official, OpenInference, OpenLLMetry,
whose scopes also start ``opentelemetry.instrumentation.``), and any scope we do not know (an app's own tracer may set
``gen_ai.*`` attributes or content by hand, and content stripping must stay exact).  SERVER spans are
always read: the server span is the query unit's root and carries the user/session/conversation the
SDK took from the request headers (docs/query-unit.md).  A passed-over span still counts in the
record (span count, the trace's shape, the root when it is the topmost span: then it is read after
all), it is only not searched for GenAI attributes or content, and it leaves exactly as received.

Content fails closed.  The instrumentations never write it, but an app can: whatever span is *current*
while the app's own code runs gets ``trace.get_current_span().set_attribute("gen_ai.prompt", ...)``.  So a
span is passed over only when no app code runs under it: a call *out* (HTTP client, database, cache; listed
in ``CALL_SCOPES``) or one ASGI message (the ``<route> http send`` / ``http receive`` spans of ``ASGI_SCOPES``;
the ASGI request span itself is SERVER, or INTERNAL when an outer server span exists, and then the app's
handler runs under it, so it is read).  The other web frameworks (Flask, Django, ...) write only request spans,
and the scopes whose spans wrap app code are read like app code: task and message consumers (Celery, Kafka,
RabbitMQ, SQS: the task body runs in the CONSUMER span), ``asyncio``/``threading`` (a coroutine or thread
body), ``click`` (the command), ``jinja2`` (a template may call app functions).  Not covered: an
instrumentation *hook* (``request_hook``) that an app writes to copy a body onto a client span under a
content name; that name would be the app's deliberate choice (such a hook should use its own key).  Scanning
each passed-over scope's wire bytes for the ~34 content names would cover it, but measured ~90 µs per
25-span trace (serialization and substring searches): more than passing over saves.

botocore is not listed: its instrumentation writes GenAI spans for Bedrock.  The names are the
instrumentations' tracer names (their package's module name; FastAPI's and ASGI's checked against the
installed packages): a name that differs in some version is simply read as before, which costs time only.
"""

from __future__ import annotations

_PREFIX = "opentelemetry.instrumentation."
# calls out of the app (opentelemetry-python-contrib): every non-SERVER span of these is passed over
CALL_SCOPES = frozenset(_PREFIX + name for name in (
    "aiohttp_client", "httpx", "requests", "urllib", "urllib3", "grpc",
    "dbapi", "sqlalchemy", "sqlite3", "psycopg", "psycopg2", "asyncpg", "aiopg", "pymysql", "mysql", "mysqlclient",
    "pymssql", "pymongo", "redis", "pymemcache", "cassandra", "elasticsearch", "tortoiseorm",
))
# ASGI servers: only their per-message spans are passed over (the request span may wrap the app's handler)
ASGI_SCOPES = frozenset(_PREFIX + name for name in ("asgi", "fastapi", "starlette"))
_ASGI_MESSAGE = (" http send", " http receive", " websocket send", " websocket receive")
READ, PASS_OVER, ASGI_MESSAGES = 0, 1, 2  # per scope: which of its non-SERVER spans the normalizer passes over


def scope_rule(scope_name: str) -> int:
    """READ every span of this scope, PASS_OVER its non-SERVER spans, or pass over its ASGI_MESSAGES only."""
    return PASS_OVER if scope_name in CALL_SCOPES else ASGI_MESSAGES if scope_name in ASGI_SCOPES else READ


def is_asgi_message(span_name: str) -> bool:
    """An ASGI ``send``/``receive`` span (``POST /ask http send``): no app code runs under it."""
    return span_name.endswith(_ASGI_MESSAGE)

