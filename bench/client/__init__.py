"""Helpers of ``bench/bench_client_overhead.py``.

The orchestrator (main .venv) imports ``venvs``, ``server`` and ``report``; each contender's
worker process runs ``python -m client.worker`` inside that contender's own venv and imports
``sdk_setup``, ``handmade``, ``contenders`` and ``workloads`` (nothing here imports rag_otel
except the rag-otel contender's own setup).
"""
