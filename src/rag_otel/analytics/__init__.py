"""rag_otel.analytics"""
