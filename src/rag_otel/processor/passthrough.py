"""Which spans the normalizer need not read: the plumbing of a request, not its RAG work.

A real trace is mostly not GenAI: the per-chunk ``http send`` spans of a streamed answer, HTTP
client calls, database queries.  Reading a span's attributes costs several microseconds in Python;
deciding from its instrumentation scope (read once per received ScopeSpans) costs almost nothing.

The rule is a **deny list**, not an allow list: a span is passed over only when its scope is one of
the OpenTelemetry instrumentations below, which write HTTP/database/messaging attributes and never
GenAI attributes or content, and it is not a SERVER span.  Everything else is read as before: our
scopes, the GenAI instrumentations (official, OpenInference, OpenLLMetry, whose scopes also start
``opentelemetry.instrumentation.``), and any scope we do not know (an app's own tracer may set
``gen_ai.*`` attributes or content by hand, and content stripping must stay exact).  SERVER spans are
always read: the server span is the query unit's root and carries the user/session/conversation the
SDK took from the request headers (docs/query-unit.md).  A passed-over span still counts in the
record (span count, the trace's shape, the root when it is the topmost span: then it is read after
all), it is only not searched for GenAI attributes or content, and it leaves exactly as received.

botocore is not listed: its instrumentation writes GenAI spans for Bedrock.  The names are the
instrumentations' tracer names (their package's module name; FastAPI's and ASGI's checked against the
installed packages): a name that differs in some version is simply read as before, which costs time only.
"""

from __future__ import annotations

_PREFIX = "opentelemetry.instrumentation."
# HTTP servers and clients, databases, caches, messaging, templating: opentelemetry-python-contrib
PLUMBING_SCOPES = frozenset(_PREFIX + name for name in (
    "asgi", "wsgi", "fastapi", "starlette", "flask", "django", "falcon", "pyramid", "tornado", "aiohttp_server",
    "aiohttp_client", "httpx", "requests", "urllib", "urllib3", "grpc",
    "dbapi", "sqlalchemy", "sqlite3", "psycopg", "psycopg2", "asyncpg", "aiopg", "pymysql", "mysql", "mysqlclient",
    "pymssql", "pymongo", "redis", "pymemcache", "cassandra", "elasticsearch", "tortoiseorm",
    "celery", "kafka", "confluent_kafka", "aiokafka", "pika", "aio_pika", "remoulade", "boto3sqs",
    "jinja2", "threading", "asyncio", "click",
))


def is_plumbing_scope(scope_name: str) -> bool:
    """True when spans of this instrumentation scope (other than SERVER spans) carry no GenAI data."""
    return scope_name in PLUMBING_SCOPES
