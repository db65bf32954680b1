"""rag_otel.processor"""
