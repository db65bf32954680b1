"""The question and the pasted passages inside prompts of the shapes apps really send.

Templates are written here in the shapes of the framework defaults and the usual hand-written ones
(not copied): each filled with a context of two passages and a question, as the app would send it.
"""

from __future__ import annotations

import pytest

from rag_otel.processor.query_unit import is_ingestion, passages_from_prompt, question_from_prompt

Q = "How long is the warranty on the kettle?"
P1 = "Every kettle carries a two-year warranty covering heating elements and switches."
P2 = "Scale damage from hard water is not covered; descale monthly with citric acid."
CTX = f"{P1}\n\n{P2}"

# (name, system, user): the question Q must come out of each, the passages P1, P2 likewise
TEMPLATES = [
    ("llamaindex text QA default",
     "You are an expert Q&A system that is trusted around the world. Always answer the query using the provided "
     "context information, and not prior knowledge.",
     f"Context information is below.\n---------------------\n{CTX}\n---------------------\nGiven the context "
     f"information and not prior knowledge, answer the query.\nQuery: {Q}\nAnswer: "),
    ("langchain stuff QA (context first, helpful answer cue)", None,
     f"Use the following pieces of context to answer the question at the end. If you don't know the answer, just "
     f"say that you don't know, don't try to make up an answer.\n\n{CTX}\n\nQuestion: {Q}\nHelpful Answer:"),
    ("langchain hub rag prompt (question before context)", None,
     f"You are an assistant for question-answering tasks. Use the following pieces of retrieved context to answer "
     f"the question. If you don't know the answer, just say that you don't know.\nQuestion: {Q} \nContext: "
     f"{P1}\n\n{P2} \nAnswer:"),
    ("context in the system message, bare user turn",
     f"You are a support assistant. Answer using only the context below.\n\nContext:\n{CTX}", Q),
    ("numbered sources in the system message",
     f"Answer with the help of the sources below and cite them like [1].\n\nSources:\n[1] {P1}\n[2] {P2}", Q),
    ("hand-written Context/Question", None, f"Context:\n{CTX}\n\nQuestion: {Q}\nAnswer:"),
    ("markdown headings", None, f"## Context\n{P1}\n\n{P2}\n\n## Question\n{Q}"),
    ("xml tags", "Answer from the documents in <context>.",
     f"<context>\n<doc id=\"warranty\">{P1}</doc>\n<doc id=\"descaling\">{P2}</doc>\n</context>\n"
     f"<question>{Q}</question>"),
    ("triple-quoted context, question last", None,
     f"Answer the question based on the context below.\n\"\"\"\n{CTX}\n\"\"\"\n\n{Q}"),
    ("documents numbered with Document N:", None,
     f"Here are the relevant documents:\nDocument 1: {P1}\nDocument 2: {P2}\n\nUser question: {Q}"),
    ("instruction after the question", None,
     f"Context:\n{CTX}\n\nQuestion: {Q}\n\nAnswer in one sentence. If the context does not say, reply 'I don't know'."),
    ("inline 'answer the question:'", None,
     f"We have provided context information below.\n-----\n{CTX}\n-----\nGiven this information, please answer "
     f"the question: {Q}"),
]


@pytest.mark.parametrize(("name", "system", "user"), TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_the_question_is_the_users_words_not_the_template(name: str, system: str | None, user: str) -> None:
    assert question_from_prompt(user, system) == Q


@pytest.mark.parametrize(("name", "system", "user"), TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_the_pasted_passages_are_the_sources_text(name: str, system: str | None, user: str) -> None:
    assert [t for _, t in passages_from_prompt(system, user)] == [P1, P2]


def test_numbered_passages_keep_their_labels() -> None:
    got = passages_from_prompt(f"Sources:\n[1] {P1}\n[2] {P2}")
    assert got == [("1", P1), ("2", P2)]


def test_langchain_condense_prompt_gives_the_follow_up() -> None:
    prompt = ("Given the following conversation and a follow up question, rephrase the follow up question to be a "
              "standalone question.\n\nChat History:\nHuman: How do I descale my kettle?\nAssistant: Use citric acid."
              "\nFollow Up Input: How often should I do it?\nStandalone question:")
    assert question_from_prompt(prompt) == "How often should I do it?"


def test_llamaindex_condense_prompt_gives_the_follow_up() -> None:
    prompt = ("Given a conversation (between Human and Assistant) and a follow up message from Human, rewrite the "
              "message to be a standalone question that captures all relevant context from the conversation.\n\n"
              "<Chat History>\nuser: How do I descale my kettle?\nassistant: Use citric acid.\n\n"
              "<Follow Up Message>\nHow often should I do it?\n\n<Standalone question>\n")
    assert question_from_prompt(prompt) == "How often should I do it?"


def test_a_plain_question_is_itself_and_a_placeholder_is_not_a_question() -> None:
    assert question_from_prompt("  What does gold status give me? ") == "What does gold status give me?"
    assert question_from_prompt("Question: {question}\nAnswer:\n\nQuestion: Why?") == "Why?"
    assert question_from_prompt("") is None and question_from_prompt(None) is None


def test_known_passages_are_removed_before_looking_for_a_label() -> None:
    faq = "Q: Can I pay by invoice? A: Yes, for business accounts."
    prompt = f"Question: {Q}\nContext:\n{faq}\nAnswer:"
    assert question_from_prompt(prompt, passages=[faq]) == Q


def test_no_passages_when_the_prompt_has_no_context() -> None:
    assert passages_from_prompt(None, Q) == []


@pytest.mark.parametrize(("roles", "ingestion"), [
    (["other", "embedding"], True),  # an index build or upload
    (["other", "embedding", "embedding"], True),
    (["other", "embedding", "retrieval", "llm"], False),
    (["other", "retrieval"], False),  # a search endpoint: a question without generation
    (["other", "llm"], False),
])
def test_ingestion_is_embeddings_without_chat_or_retrieval(roles: list[str], ingestion: bool) -> None:
    assert is_ingestion(roles) is ingestion
