"""The demo's documents: short passages about Harbor Sync, a fictional product, shipped as package data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Passage:
    id: str  # "<file stem>#<n>", stable across runs so retrieval spans are comparable
    title: str
    text: str
    topic: str  # the file stem: getting-started, billing, sharing, security, troubleshooting


def load_passages() -> list[Passage]:
    """Every ``## `` section of every corpus file is one passage (the file's intro is not)."""
    out: list[Passage] = []
    root = resources.files("rag_otel.demo") / "corpus"
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".md"):
            continue
        topic = entry.name.removesuffix(".md")
        sections = re.split(r"^## ", entry.read_text(encoding="utf-8"), flags=re.M)[1:]
        for n, section in enumerate(sections, start=1):
            title, _, body = section.partition("\n")
            out.append(Passage(f"{topic}#{n}", title.strip(), " ".join(body.split()), topic))
    return out
