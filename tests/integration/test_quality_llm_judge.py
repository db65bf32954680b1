"""The LLM-judge backend against real OpenAI-compatible servers on 127.0.0.1, through the real SDK.

A small judge server (below) answers with JSON scores; the shared fake OpenAI server stands in for
slow, failing and chatty (non-JSON) judges.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request

from rag_otel.config import ConfigError, LlmJudge, QualityAssessment
from rag_otel.quality import build_scorer
from tests.support.fake_openai import FakeOpenAI

QUESTION = "How tall is the Eiffel Tower?"
ANSWER = "The Eiffel Tower is 330 metres tall."
SOURCES = ["The Eiffel Tower in Paris is 330 metres tall."]
LLM_AXES = {"accuracy": "llm", "relevance": "llm"}


class JudgeServer:
    """An OpenAI-compatible /v1/chat/completions that grades every requested criterion 0.42."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> dict[str, Any]:
            body = await request.json()
            self.requests.append(body)
            prompt = body["messages"][-1]["content"]
            criteria = [line[2:].split(":")[0] for line in prompt.split("Criteria:\n")[1].splitlines()]
            reply = {c: {"score": 0.42, "explanation": f"judge says {c}"} for c in criteria}
            return {
                "id": "chatcmpl-judge", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "```json\n" + json.dumps(reply) + "\n```"}}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100},
            }

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "judge server did not start"
            time.sleep(0.01)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def judge() -> Iterator[JudgeServer]:
    server = JudgeServer()
    yield server
    server.stop()


def scorer_for(base_url: str, **llm: Any):
    cfg = LlmJudge(base_url=base_url, api_key_env="RAG_OTEL_TEST_NO_KEY", **{"sample_rate": 1.0, **llm})
    return build_scorer(QualityAssessment(backends=LLM_AXES, llm=cfg))


def test_judge_scores_its_axes_in_one_call_and_lexical_the_rest(judge: JudgeServer) -> None:
    judge.requests.clear()
    scorer = scorer_for(judge.base_url)
    r = scorer.score(QUESTION, ANSWER, SOURCES)
    assert len(judge.requests) == 1
    assert judge.requests[0]["model"] == "gpt-4o-mini"
    for axis in LLM_AXES:
        assert r.axes[axis].score == 0.42
        assert r.axes[axis].explanation == "judged by the LLM"  # its words retell the content: evidence
        assert r.axes[axis].evidence == f"judge says {axis}"
        assert r.axes[axis].evaluator == "llm/gpt-4o-mini"
    assert r.axes["consistency"].evaluator == "lexical/3"
    assert r.evaluator == "lexical/3+llm/gpt-4o-mini"
    backend = scorer.backends["accuracy"]
    assert backend.stats["ok"] == 1
    assert backend.cost_usd > 0  # priced from pricing.yaml by the reported usage


def test_sample_rate_zero_never_calls_the_judge(judge: JudgeServer) -> None:
    judge.requests.clear()
    r = scorer_for(judge.base_url, sample_rate=0.0).score(QUESTION, ANSWER, SOURCES)
    assert judge.requests == []
    assert r.axes["accuracy"].evaluator == "lexical/3"
    assert r.axes["accuracy"].explanation.startswith("(llm: not sampled)")


def test_the_judge_is_multilingual_where_lexical_rules_are_english(judge: JudgeServer) -> None:
    """A Chinese answer: the judge scores its axes; lexical judges nothing of it (no number to check), so the
    other axes are left out, and with the judge not asked nothing is scored and the status says why."""
    question, answer = "如何重置密码？", "您可以在设置页面点击“忘记密码”来重置密码。"
    sources = ["要重置密码，请打开设置页面并点击“忘记密码”。系统会发送一封邮件。"]
    judge.requests.clear()
    r = scorer_for(judge.base_url).score(question, answer, sources)
    assert len(judge.requests) == 1 and question in judge.requests[0]["messages"][-1]["content"]
    assert {a: (s.score, s.evaluator) for a, s in r.axes.items()} == {
        "accuracy": (0.42, "llm/gpt-4o-mini"), "relevance": (0.42, "llm/gpt-4o-mini")}
    assert r.status == "scored" and r.overall == 0.42
    unasked = scorer_for(judge.base_url, sample_rate=0.0).score(question, answer, sources)
    assert unasked.status == "unsupported_language" and unasked.axes == {} and len(judge.requests) == 1


def test_sampling_is_deterministic_per_query(judge: JudgeServer) -> None:
    scorer = scorer_for(judge.base_url, sample_rate=0.5)
    answers = [f"The tower is {n} metres tall." for n in range(40)]
    first = [scorer.score(QUESTION, a, SOURCES).axes["relevance"].evaluator for a in answers]
    again = [scorer.score(QUESTION, a, SOURCES).axes["relevance"].evaluator for a in answers]
    assert first == again
    assert 5 < first.count("llm/gpt-4o-mini") < 35


def test_hourly_call_budget_then_recovery(judge: JudgeServer) -> None:
    now = [1000.0]
    scorer = scorer_for(judge.base_url, max_calls_per_hour=2)
    scorer.backends["accuracy"].clock = lambda: now[0]
    got = [scorer.score(QUESTION, ANSWER + f" {i}", SOURCES).axes["accuracy"] for i in range(3)]
    assert [g.evaluator for g in got] == ["llm/gpt-4o-mini", "llm/gpt-4o-mini", "lexical/3"]
    assert "hourly call budget reached" in got[2].explanation
    now[0] += 3601
    assert scorer.score(QUESTION, ANSWER, SOURCES).axes["accuracy"].evaluator == "llm/gpt-4o-mini"


def test_daily_cost_budget(judge: JudgeServer) -> None:
    scorer = scorer_for(judge.base_url, max_cost_per_day=0.0001)
    first = scorer.score(QUESTION, ANSWER, SOURCES).axes["accuracy"]
    second = scorer.score(QUESTION, ANSWER + " Yes.", SOURCES).axes["accuracy"]
    assert first.evaluator == "llm/gpt-4o-mini"
    assert second.evaluator == "lexical/3" and "daily cost budget reached" in second.explanation


def test_the_clients_own_timeout_counts_as_a_timeout_not_a_failure() -> None:
    """The openai client carries the same timeout and may ring first (CI saw it): that is the judge being slow
    too. Forced here by giving the wait a longer timer than the client already built."""
    with FakeOpenAI(latency=8.0) as slow:
        scorer = scorer_for(slow.base_url, timeout=0.5)
        backend = scorer.backends["accuracy"]
        backend.cfg = backend.cfg.model_copy(update={"timeout": 5.0})  # the client keeps its 0.5 s
        t = time.monotonic()
        r = scorer.score(QUESTION, ANSWER, SOURCES)
        assert time.monotonic() - t < 4.0  # the client's timer cut it off, not the 5 s wait
        assert r.axes["accuracy"].explanation.startswith("(llm: timed out after 5s)")
        assert backend.stats["timeout"] == 1 and backend.stats["failed"] == 0
        backend.close()


def test_a_slow_judge_is_cut_off_by_the_timeout_and_the_fallback_recorded() -> None:
    with FakeOpenAI(latency=8.0) as slow:
        scorer = scorer_for(slow.base_url, timeout=0.5)
        t = time.monotonic()
        r = scorer.score(QUESTION, ANSWER, SOURCES)
        took = time.monotonic() - t
        assert took < 3.0, f"scoring waited {took:.2f}s on an 8s judge with a 0.5s timeout"
        assert r.status == "scored"
        for axis in LLM_AXES:
            assert r.axes[axis].evaluator == "lexical/3"
            assert r.axes[axis].explanation.startswith("(llm: timed out after 0.5s)")
        backend = scorer.backends["accuracy"]
        assert backend.stats["timeout"] == 1
        assert backend.last_error == "timed out after 0.5s"
        backend.close()


@pytest.mark.parametrize(("model", "reason"), [("error-500", "failed: InternalServerError"),
                                               ("gpt-4o-mini", "unusable reply")])
def test_failing_or_chatty_judges_fall_back_with_the_reason(model: str, reason: str) -> None:
    with FakeOpenAI() as fake:  # answers in prose, or with the HTTP error the model name asks for
        scorer = scorer_for(fake.base_url, model=model, timeout=5)
        r = scorer.score(QUESTION, ANSWER, SOURCES)
        assert len(fake.requests) == 1
        assert r.axes["accuracy"].evaluator == "lexical/3"
        assert reason in r.axes["accuracy"].explanation
        assert scorer.backends["accuracy"].stats["failed"] == 1
        lexical = build_scorer().score(QUESTION, ANSWER, SOURCES)
        assert r.axes["accuracy"].score == lexical.axes["accuracy"].score


def test_an_unreachable_judge_never_raises_into_the_caller() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    r = scorer_for(f"http://127.0.0.1:{port}/v1", timeout=2).score(QUESTION, ANSWER, SOURCES)
    assert r.status == "scored"
    assert "failed: APIConnectionError" in r.axes["accuracy"].explanation


def test_the_cascade_sends_only_low_scored_axes_to_the_judge(judge: JudgeServer) -> None:
    """Lexical scores everything; only axes below cascade.below (or abstained) go to the judge, whose own sample
    rate is then not asked (the cascade chooses), one call per escalated query."""
    cfg = LlmJudge(base_url=judge.base_url, api_key_env="RAG_OTEL_TEST_NO_KEY", sample_rate=0.0)
    scorer = build_scorer(QualityAssessment(llm=cfg, cascade={"enabled": True, "below": 0.5}))
    before = len(judge.requests)
    good = scorer.score(QUESTION, ANSWER, SOURCES)
    assert len(judge.requests) == before and good.escalated == ()
    assert all(a.evaluator.startswith("lexical/") for a in good.axes.values())

    wrong = scorer.score(QUESTION, "The Eiffel Tower is 520 metres tall and was built in London by Napoleon.", SOURCES)
    assert len(judge.requests) == before + 1, wrong
    prompt = judge.requests[-1]["messages"][-1]["content"]
    asked = [line[2:].split(":")[0] for line in prompt.split("Criteria:\n")[1].splitlines()]
    assert set(asked) == set(wrong.escalated) and "accuracy" in asked and "relevance" not in asked
    for axis in wrong.escalated:
        assert wrong.axes[axis].score == 0.42 and wrong.axes[axis].evaluator == "llm/gpt-4o-mini"
        assert wrong.axes[axis].explanation.startswith("(escalated)")
    assert wrong.axes["relevance"].evaluator.startswith("lexical/")
    assert "llm/gpt-4o-mini" in wrong.evaluator and "lexical/" in wrong.evaluator


def test_the_cascade_needs_a_judge() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        build_scorer(QualityAssessment(cascade={"enabled": True}))
