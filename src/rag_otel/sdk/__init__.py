"""App side: everything that runs inside a user's RAG application (light dependencies only)."""
