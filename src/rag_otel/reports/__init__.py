"""rag_otel.reports"""
