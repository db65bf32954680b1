"""What a trace without our ``rag.query`` root was: a question (and which one), or ingestion.

Most apps are not written for us: no decorator, no query engine that opens a query span.  The
processor still sees the whole trace, so it infers the query unit here (rules in docs/query-unit.md):

* the unit is the trace: its server span or, without one, its root span;
* a trace whose only model calls are embeddings, with no chat call and no retrieval (an index build,
  a document upload) is ingestion, not a question;
* the question is the retrieval's query text, else the text of a single embeddings input that precedes
  the first chat call, else the user turn with the prompt template's pasted context and instructions
  taken out (:func:`question_from_prompt`);
* when the retriever gave only ids (raw FAISS, a hand-written search), the documents' text is read
  from the context passages pasted into the prompt (:func:`passages_from_prompt`).

Pure functions over plain strings, so every rule is unit-tested against many prompt templates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# --- the question inside a prompt -------------------------------------------------------------------

# Labels that introduce the user's question in hand-written and framework templates, most specific
# first ("Follow Up Input:" is LangChain's condense prompt, "Query:" LlamaIndex's QA prompt).
_QUESTION_LABELS = (
    r"follow[ -]?up (?:input|question)", r"(?:user(?:'s)? |human )?question", r"(?:user |search )?query",
    r"user input", r"user message",
)
_WEAK_LABELS = (r"q", r"input", r"ask", r"human", r"user")
# Lines that end a labelled question: the next section of the template.
_SECTION = re.compile(
    r"^\s*(?:#+\s*)?(?:helpful |final |your )?(?:answer|response|standalone question|rephrased question|context|"
    r"contexts|sources?|documents?|passages?|references|knowledge|chat history|history|conversation|"
    r"instructions?|rules|assistant|ai|output)\b[^\n]{0,40}:",
    re.I | re.M,
)
_TAGGED = re.compile(r"<(question|query|user_question|input)>\s*(.*?)\s*</\1>", re.I | re.S)
# LlamaIndex's condense prompt opens sections with tags it never closes ("<Follow Up Message>\n...")
_OPEN_TAGGED = re.compile(r"<(?:follow[ -]?up (?:message|question|input)|question|query)>[ \t]*\n?(.*?)(?=\n\s*<|\Z)",
                          re.I | re.S)
_INLINE = re.compile(r"\b(?:answer|respond to|address) the (?:following )?(?:question|query)\s*:\s*(.+)", re.I | re.S)
_DELIMITER = re.compile(r"^\s*(?:-{3,}|={3,}|_{3,}|\*{3,}|`{3}\w*|\"{3}|'{3}|#{3,})\s*$", re.M)
# Paragraph openings that mark pasted context rather than the user's words.
_CONTEXT_HEAD = re.compile(
    r"^\s*(?:#+\s*)?(?:context(?: information)?|contexts|sources?|documents?|passages?|references|knowledge(?: base)?|"
    r"retrieved (?:context|documents|passages)|relevant (?:context|documents|passages|information)|background|"
    r"search results|excerpts?|chat history|conversation history|history)\b[^\n]{0,60}(?::|\bbelow\b)",
    re.I,
)
_PASSAGE_MARK = re.compile(
    r"^\s*(?:\[(\w{1,40})\]|(?:source|document|doc|passage|chunk|context)\s*#?\s*(\w{1,40})\s*[:.)\]-]"
    r"|<(?:doc|document|source|passage)(?:\s+(?:id|name|source)=[\"']?([^\"'>\s]+)[\"']?)?[^>]*>)", re.I)
# Sentences that instruct the model (the template's own words), never the user's question.
_INSTRUCTION = re.compile(
    r"^\s*(?:you are|you're|act as|answer|use|using|given|based on|if (?:you|the)|do not|don't|never|always|only|"
    r"be |keep|cite|respond|reply|please|provide|return|write|think|make sure|ensure|avoid|limit|include|"
    r"format|the (?:answer|context|following)|below (?:is|are)|here (?:is|are)|we have provided|"
    r"context information|rephrase|summari[sz]e|consider|refer|remember|note|important)\b",
    re.I,
)
_HISTORY_TURN = re.compile(r"^\s*(?:human|user|assistant|ai|bot|system)\s*:", re.I)
_META_LINE = re.compile(r"^\s*[\w .-]{1,40}:\s*\S[^\n]{0,200}$")


def question_from_prompt(user: str | None, system: str | None = None, passages: Sequence[str] = ()) -> str | None:
    """The user's question inside the last user turn of a prompt (None when there is no user turn).

    ``system``: the system instructions (context pasted there leaves the user turn as the question);
    ``passages``: document texts the trace already knows, removed before any rule looks.
    """
    if not user or not user.strip():
        return None
    text = user
    for p in passages:
        if p and len(p) >= 20:
            text = text.replace(p, "\n")
    if m := _TAGGED.findall(text):
        return _clean(m[-1][1])
    if (m := _OPEN_TAGGED.findall(text)) and _clean(m[-1]):
        return _clean(m[-1])
    labelled = _labelled(text, _QUESTION_LABELS) or _labelled(text, _WEAK_LABELS) or _headed(text)
    if labelled:
        return labelled
    if (m := _INLINE.search(text)) and (q := _until_section(m.group(1))):
        return q
    kept = [p for p in _paragraphs(_drop_delimited(text)) if _is_own_words(p)]
    if not kept:
        return _clean(user) if len(user) <= 500 else None
    asked = [p for p in kept if p.rstrip().endswith("?")]
    return _clean((asked or kept)[-1])


def _labelled(text: str, labels: Sequence[str]) -> str | None:
    """The text after the last line-leading ``label:`` in ``text``, up to the next section or blank line."""
    pattern = re.compile(rf"^[ \t]*(?:#+\s*|\*\*)?(?:{'|'.join(labels)})\s*(?:\*\*)?\s*:[ \t]*", re.I | re.M)
    found = list(pattern.finditer(text))
    for m in reversed(found):
        q = _until_section(text[m.end():])
        if q and not q.startswith("{"):  # an unfilled template placeholder is not a question
            return q
    return None


def _headed(text: str) -> str | None:
    """The paragraph under the last markdown heading that names the question (``## Question``)."""
    found = list(re.finditer(rf"^[ \t]*#+\s*(?:{'|'.join(_QUESTION_LABELS)})\s*:?\s*$", text, re.I | re.M))
    return _until_section(text[found[-1].end():].lstrip("\n")) if found else None


def _until_section(rest: str) -> str | None:
    cut = len(rest)
    if m := _SECTION.search(rest):
        cut = m.start()
    if m := re.search(r"\n\s*\n", rest):
        cut = min(cut, m.start())
    if m := _DELIMITER.search(rest):
        cut = min(cut, m.start())
    q = _clean(rest[:cut])
    return q or None


def _drop_delimited(text: str) -> str:
    """``text`` without the blocks fenced by delimiter lines (``-----``, ``\"\"\"``, triple backticks)."""
    marks = list(_DELIMITER.finditer(text))
    if len(marks) < 2:
        return text
    out, pos = [], 0
    for a, b in zip(marks[::2], marks[1::2], strict=False):
        out.append(text[pos:a.start()])
        pos = b.end()
    out.append(text[pos:])
    return "\n\n".join(out)


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _is_own_words(paragraph: str) -> bool:
    """Not pasted context, history or an instruction of the template."""
    if _CONTEXT_HEAD.match(paragraph) or _PASSAGE_MARK.match(paragraph) or _HISTORY_TURN.match(paragraph):
        return False
    if "{" in paragraph and "}" in paragraph and re.search(r"\{\w+\}", paragraph):
        return False  # an unfilled template
    sentences = [s for s in re.split(r"(?<=[.!:])\s+", paragraph) if s.strip()]
    if sentences and all(_INSTRUCTION.match(s) for s in sentences) and not paragraph.rstrip().endswith("?"):
        return False
    lines = paragraph.splitlines()
    return not (len(lines) > 1 and all(_META_LINE.match(x) for x in lines))


def _clean(s: str) -> str:
    s = s.strip().strip('"\'`').strip()
    return re.sub(r"[ \t]+\n", "\n", s)


# --- the documents pasted into a prompt ----------------------------------------------------------

def passages_from_prompt(*texts: str | None) -> list[tuple[str | None, str]]:
    """(label, text) of each context passage pasted into the prompt's system or user text.

    The context region is a block fenced by delimiter lines, or the text under a context heading
    ("Context:", "Sources:", "Context information is below.") up to the next section (the question, the
    answer cue).  Inside it, passages are numbered (``[1]``, ``Source 2:``, ``<doc id=..>``) or, without
    numbers, separated by blank lines; "key: value" metadata paragraphs are skipped.
    """
    for text in texts:
        if not text:
            continue
        region = _context_region(text)
        if region:
            found = _split_passages(region)
            if found:
                return found
    return []


def _context_region(text: str) -> str | None:
    if m := _CONTEXT_TAG.search(text):
        return m.group(2).strip()
    head = _REGION_HEAD.search(text)
    if head is None:
        marks = list(_DELIMITER.finditer(text))
        if len(marks) >= 2:
            return text[marks[0].end():marks[1].start()].strip()
        return _before_question(text)
    rest = text[head.end():]
    marks = list(_DELIMITER.finditer(rest))
    if marks and not rest[:marks[0].start()].strip() and len(marks) >= 2:  # a fenced block right under the head
        return rest[marks[0].end():marks[1].start()].strip()
    end = len(rest)
    question = re.compile(rf"^[ \t]*(?:#+\s*|\*\*)?(?:{'|'.join(_QUESTION_LABELS)}|answer|helpful answer|"
                          r"chat history|instructions?)\s*(?:\*\*)?\s*:", re.I | re.M)
    if m := question.search(rest):
        end = m.start()
    if marks:
        end = min(end, marks[0].start())
    if m := re.search(r"^[ \t]*#+\s+\S", rest, re.M):  # the next markdown section
        end = min(end, m.start())
    region = rest[:end].strip()
    return region or None


_CONTEXT_TAG = re.compile(r"<(context|documents|sources|search_results)>\s*(.*?)\s*</\1>", re.I | re.S)
_REGION_HEAD = re.compile(
    r"^[ \t]*(?:here (?:is|are) )?(?:the )?(?:(?:#+\s*)?(?:context(?: information)?|contexts|sources|documents|"
    r"passages|references|retrieved (?:context|documents|passages)|relevant (?:context|documents|passages|"
    r"information)|search results|knowledge(?: base)?)\b[^\n]{0,60}?(?::|\bbelow\b\.?)|#+\s*(?:context|sources|"
    r"documents)\s*$)[ \t]*\n?", re.I | re.M)


def _before_question(text: str) -> str | None:
    """No heading, no fence: the paragraphs before the question's label that are not the template's instructions
    (LangChain's stuff prompt pastes the documents between its instruction and "Question:")."""
    labels = re.compile(rf"^[ \t]*(?:{'|'.join(_QUESTION_LABELS)})\s*:", re.I | re.M)
    found = list(labels.finditer(text))
    if not found:
        return None
    paras = [p for p in _paragraphs(text[:found[-1].start()]) if not _instruction_paragraph(p)]
    return "\n\n".join(paras) or None


def _instruction_paragraph(paragraph: str) -> bool:
    sentences = [s for s in re.split(r"(?<=[.!:])\s+", paragraph) if s.strip()]
    return bool(sentences) and all(_INSTRUCTION.match(s) for s in sentences)


def _split_passages(region: str) -> list[tuple[str | None, str]]:
    lines = region.splitlines()
    numbered: list[tuple[str | None, list[str]]] = []
    for line in lines:
        m = _PASSAGE_MARK.match(line)
        if m:
            label = m.group(1) or m.group(2) or m.group(3)
            numbered.append((label, [line[m.end():].strip()]))
        elif numbered:
            numbered[-1][1].append(line)
    if len(numbered) >= 1 and region.lstrip().startswith(lines[0].lstrip()) and _PASSAGE_MARK.match(lines[0]):
        out = []
        for label, body in numbered:
            t = re.sub(r"</(?:doc|document|source|passage)>\s*$", "", "\n".join(body).strip(), flags=re.I).strip()
            if t:
                out.append((label, t))
        return out
    paras = [p for p in _paragraphs(region)
             if not (all(_META_LINE.match(x) for x in p.splitlines()) and len(p) < 200 and ":" in p.split()[0])]
    return [(None, p) for p in paras]


# --- which traces are questions ------------------------------------------------------------------

def is_ingestion(roles: Sequence[str]) -> bool:
    """Embeddings (or other model work) but no chat call and no retrieval: an index build or an upload."""
    return "embedding" in roles and "llm" not in roles and "retrieval" not in roles and "rerank" not in roles
