"""Answer quality scoring: four axes (accuracy, completeness, relevance, consistency) in [0, 1].

``build_scorer(config.quality_assessment).score(question, answer, sources)`` returns a
:class:`rag_otel.records.QualityResult`; backends (lexical, embedding, llm) are chosen per axis.
"""

from rag_otel.quality.scorer import QualityScorer, build_scorer, grade

__all__ = ["QualityScorer", "build_scorer", "grade"]
