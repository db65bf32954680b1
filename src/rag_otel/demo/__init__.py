"""rag_otel.demo"""
