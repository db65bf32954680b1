"""rag_otel.alerts"""
