"""rag_otel.quality"""
