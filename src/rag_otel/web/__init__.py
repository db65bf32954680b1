"""rag_otel.web"""
