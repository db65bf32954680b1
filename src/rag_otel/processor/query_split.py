"""How many questions one trace holds, and which spans belong to each (rules in docs/query-unit.md).

One trace is usually one question.  It holds several when one request or one script span carries
several independent question -> answer chains: LangServe's ``/batch``, LangChain's ``.batch()``,
a loop over questions inside one parent span, two ``rag.query`` spans under one server span.

* Several ``rag.query`` spans, none inside another: each is a unit (the app said so).
* Otherwise the *atoms* are the children of the top span (descending through a lone wrapper) whose
  subtree holds model or retrieval work.  Atoms are joined when they serve the same question: two chat
  calls asking the same question (an agent's steps, an LLM reranker, a condense step and its answer),
  one's answer being the other's question or search query (query rewriting), a retrieval and the call
  whose prompt carries its query or documents.  Atoms with no chat call (a retrieval, an embeddings call)
  join the chat they feed.  Each resulting group holding a chat call is one unit.
* Without captured prompts nothing can tell a batch from one question's several calls: one unit.

Pure over a small :class:`Node` view of the spans, with the texts read lazily through :class:`Texts`,
so a plain trace (one chat call) costs one pass and no text is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

_MIN_TEXT = 8  # shorter outputs ("Yes.", "3") match too much to link two calls


@dataclass(slots=True)
class Node:
    """One span as the splitter sees it."""

    span_id: bytes
    parent_id: bytes
    role: str  # llm | embedding | retrieval | rerank | other
    name: str
    start: int
    end: int


@dataclass(slots=True)
class Texts:
    """The captured texts of a node (by its position), read only when a split is possible."""

    prompt: Callable[[int], tuple[str | None, str]]  # (last user turn, whole input text)
    question: Callable[[int], str | None]  # the question inside the prompt (query_unit's rules): costly, read last
    answer: Callable[[int], str | None]
    search: Callable[[int], tuple[str | None, list[str]]]  # a retrieval's (query text, document texts)


@dataclass(slots=True)
class Unit:
    """One question's spans (positions into the node list) and the span its record is about."""

    root: int
    members: list[int] = field(default_factory=list)
    adopted: bool = False  # holds work from outside its root's subtree (the root's own cost sum misses it)


def split(nodes: Sequence[Node], top: int, texts: Texts, rag_query: str = "rag.query") -> list[Unit]:
    """The units of a trace, or ``[]`` when it is one question (the caller's whole-trace record)."""
    if sum(1 for n in nodes if n.role == "llm") < 2 and sum(1 for n in nodes if n.name == rag_query) < 2:
        return []  # the common trace: one chat call cannot answer two questions
    pos = {n.span_id: i for i, n in enumerate(nodes)}
    children: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        p = pos.get(n.parent_id)
        if p is not None and p != i:
            children.setdefault(p, []).append(i)
    queries = [i for i, n in enumerate(nodes) if n.name == rag_query]
    if queries:
        outer = [i for i in queries if not _has_ancestor(nodes, pos, i, set(queries))]
        if len(outer) < 2:
            return []
        units = [Unit(i, _subtree(children, i)) for i in outer]
        _adopt_outside_work(nodes, units)
        return units
    work = _work(nodes, children, top)
    while nodes[top].role == "other":
        holding = [c for c in children.get(top, ()) if work[c]]
        if len(holding) != 1 or nodes[holding[0]].role != "other":
            break
        top = holding[0]  # a lone wrapper (an app's handler span, a chain) around everything: look inside it
    if nodes[top].role != "other":
        return []
    heads = [c for c in children.get(top, ()) if work[c]]
    atoms = [_subtree(children, c) for c in heads]
    chats = [a for a, members in enumerate(atoms) if any(nodes[m].role == "llm" for m in members)]
    if len(chats) < 2:
        return []
    llms = {a: [m for m in atoms[a] if nodes[m].role == "llm"] for a in chats}
    prompts = {m: texts.prompt(m) for a in chats for m in llms[a]}
    if any(p[0] is None for p in prompts.values()):
        return []  # no captured prompt: a batch and one question's several calls look the same
    texts = _once(texts)
    groups = _Groups(len(atoms))
    _join_searches(nodes, atoms, chats, llms, prompts, texts, groups)
    if len({groups.find(a) for a in chats}) < 2:
        return []  # one question already (a rewrite, its search and the answer): no prompt needs parsing
    _join_chats(chats, llms, prompts, texts, groups)
    _join_rest(nodes, atoms, chats, groups)
    by_group: dict[int, list[int]] = {}
    for a in range(len(atoms)):
        by_group.setdefault(groups.find(a), []).append(a)
    units = []
    for members in by_group.values():
        if not any(a in llms for a in members):
            continue
        spans = sorted(m for a in members for m in atoms[a])
        root = heads[members[0]] if len(members) == 1 else max(
            (m for a in members for m in llms.get(a, ())), key=lambda m: (nodes[m].start, m))
        units.append(Unit(root, spans))
    if len(units) < 2:
        return []
    return sorted(units, key=lambda u: (nodes[u.members[0]].start, u.members[0]))


def _once(texts: Texts) -> Texts:
    """``texts`` with each answer and search read once (the joining rules ask for them again and again)."""
    answers: dict[int, str | None] = {}
    questions: dict[int, str | None] = {}
    searches: dict[int, tuple[str | None, list[str]]] = {}

    def question(m: int) -> str | None:
        if m not in questions:
            questions[m] = texts.question(m)
        return questions[m]

    def answer(m: int) -> str | None:
        if m not in answers:
            answers[m] = texts.answer(m)
        return answers[m]

    def search(m: int) -> tuple[str | None, list[str]]:
        if m not in searches:
            searches[m] = texts.search(m)
        return searches[m]

    return Texts(texts.prompt, question, answer, search)


def _join_chats(chats: list[int], llms: dict[int, list[int]], prompts: dict[int, tuple[str | None, str]],
                texts: Texts, groups: _Groups) -> None:
    """Two chat atoms serve one question when they ask the same question, or when one's answer is the
    other's question (query rewriting, a condense step)."""
    asked: dict[str, int] = {}
    for a in chats:
        for m in llms[a]:
            for q in (texts.question(m), prompts[m][0]):
                if q and (q := q.strip()):
                    if q in asked:
                        groups.union(asked[q], a)
                    else:
                        asked[q] = a
    for a in chats:
        for m in llms[a]:
            out = (texts.answer(m) or "").strip()
            if len(out) < _MIN_TEXT:
                continue
            for b in chats:
                if b != a and any(out in (texts.question(x) or "") or out == (prompts[x][0] or "").strip()
                                  for x in llms[b]):
                    groups.union(a, b)


def _join_searches(nodes: Sequence[Node], atoms: list[list[int]], chats: list[int], llms: dict[int, list[int]],
                   prompts: dict[int, tuple[str | None, str]], texts: Texts, groups: _Groups) -> None:
    """A retrieval joins the call that wrote its query (a rewrite) and the call it fed: the one whose user turn
    is its query, else the one whose prompt carries its query, else the one carrying most of its documents."""
    owner = {m: a for a, members in enumerate(atoms) for m in members}
    for r in (i for i in owner if nodes[i].role == "retrieval"):
        query, docs = texts.search(r)
        query = (query or "").strip()
        home = owner[r]
        if query:  # the call that wrote it: a rewrite, or one of a multi-query generator's lines
            for a in chats:
                if any(_wrote(texts.answer(m), query) for m in llms[a]):
                    groups.union(home, a)
        best: list[tuple[int, int]] = []
        for a in chats:
            score = 0
            if query and any((prompts[m][0] or "").strip() == query for m in llms[a]):
                score = 1_000_000
            elif query and any(query in prompts[m][1] for m in llms[a]):
                score = 100_000
            score += sum(1 for d in docs if len(d) >= 20 and any(d in prompts[m][1] for m in llms[a]))
            if score:
                best.append((score, a))
        if not best:
            continue
        top = max(s for s, _ in best)
        tied = [a for s, a in best if s == top]
        if len(tied) == 1 or home in tied:
            groups.union(home, tied[0] if home not in tied else home)
        elif home not in chats:  # the same documents fed several calls: the next one to start after it
            groups.union(home, _next_after(nodes, atoms, tied, nodes[r].start))


def _wrote(answer: str | None, query: str) -> bool:
    answer = (answer or "").strip()
    return answer == query or (len(query) >= _MIN_TEXT and query in answer.splitlines())


def _adopt_outside_work(nodes: Sequence[Node], units: list[Unit]) -> None:
    """A model call or search outside every ``rag.query`` span (a classifier before the questions, an
    embeddings call between them) belongs to the question that starts next after it, else the last one
    before it: its tokens and cost count in some record instead of in none."""
    held = {m for u in units for m in u.members}
    starts = [(nodes[u.root].start, k) for k, u in enumerate(units)]
    for m, n in enumerate(nodes):
        if n.role == "other" or m in held:
            continue
        after = [(s, k) for s, k in starts if s >= n.start]
        unit = units[min(after)[1] if after else max(starts)[1]]
        unit.members.append(m)
        unit.adopted = True
    for u in units:
        u.members.sort()


def _join_rest(nodes: Sequence[Node], atoms: list[list[int]], chats: list[int], groups: _Groups) -> None:
    """An atom with no chat call still alone (an embeddings call, a search with nothing captured) feeds the
    chat that starts next after it (in a loop: its own question's), else the last one before it."""
    chat_set = set(chats)
    for a in range(len(atoms)):
        if a in chat_set or any(groups.find(a) == groups.find(c) for c in chats):
            continue
        groups.union(a, _next_after(nodes, atoms, chats, min(nodes[m].start for m in atoms[a])))


def _next_after(nodes: Sequence[Node], atoms: list[list[int]], candidates: list[int], start: int) -> int:
    first = {c: min(nodes[m].start for m in atoms[c]) for c in candidates}
    after = [c for c in candidates if first[c] >= start]
    if after:
        return min(after, key=first.__getitem__)
    return max(candidates, key=first.__getitem__)


def _work(nodes: Sequence[Node], children: dict[int, list[int]], top: int) -> dict[int, bool]:
    """For each node under ``top``: does its subtree hold model or retrieval work?"""
    out: dict[int, bool] = {}
    order, stack = [], [top]
    while stack:
        i = stack.pop()
        if i in out:  # a malformed trace may hold a parent cycle
            continue
        out[i] = False
        order.append(i)
        stack.extend(children.get(i, ()))
    for i in reversed(order):
        out[i] = nodes[i].role != "other" or any(out.get(c, False) for c in children.get(i, ()))
    return out


def _subtree(children: dict[int, list[int]], root: int) -> list[int]:
    seen, stack = {root}, [root]
    while stack:
        for c in children.get(stack.pop(), ()):
            if c not in seen:
                seen.add(c)
                stack.append(c)
    return sorted(seen)


def _has_ancestor(nodes: Sequence[Node], pos: dict[bytes, int], i: int, among: set[int]) -> bool:
    p = pos.get(nodes[i].parent_id)
    for _ in range(len(nodes)):
        if p is None:
            return False
        if p in among:
            return True
        p = pos.get(nodes[p].parent_id)
    return False


class _Groups:
    """Union-find over atom numbers."""

    def __init__(self, n: int) -> None:
        self._parent = list(range(n))

    def find(self, a: int) -> int:
        while self._parent[a] != a:
            self._parent[a] = self._parent[self._parent[a]]
            a = self._parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)
