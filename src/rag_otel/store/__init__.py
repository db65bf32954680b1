"""rag_otel.store"""
