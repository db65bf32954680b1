"""The one-command demo: a small instrumented RAG app, a traffic generator and the processor, wired together.

``rag-otel demo`` (see ``cli.py``) runs everything on this machine with no outside service; the app
alone (``--serve-app``) is what the docker-compose topology deploys.
"""
