"""Two retrieval sets with judged passages, built from public FAQs that Debian ships: every question of the FAQ
is a query, and the answer under it is its one relevant document (a question asked twice has both answers).

- ``python-faq``: the Python 3.11 FAQ (Python Software Foundation licence), 170+ questions: the held-out set.
- ``debian-faq``: the Debian FAQ (GPL), 90+ questions: the set the reranker's choices were made on.

    apt-get download debian-faq python3.11-doc && for f in *.deb; do dpkg -x $f x; done
    python benchmarks/make_rerank_sets.py x OUT      # writes OUT/{python,debian}-faq.{docs,queries}.jsonl

The documents are JSONL of ``{"id", "text"}`` and the queries JSONL of ``{"query", "relevant"}``: what
``nlpsuite eval retrieval QUERIES --docs DOCS`` (and benchmarks/bench_rerank.py) read.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from pathlib import Path

UNDERLINE = re.compile(r"[=\-~^\"'*+#]{3,}")
ROLE = re.compile(r":[a-z:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")  # :func:`name` -> name, :ref:`text <target>` -> text
MIN_ANSWER = 80  # characters: a heading over a one-line pointer elsewhere is no useful judged passage


def _clean_rst(lines: list[str]) -> str:
    text = "\n".join(line for line in lines if not line.lstrip().startswith((".. ", ":")) or "::" in line)
    text = ROLE.sub(r"\1", text)
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r"`([^`<]*?)\s*<[^>]*>`_+", r"\1", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def python_faq(root: Path) -> list[dict]:
    """(question, answer) sections of the Python FAQ's reStructuredText sources."""
    sections = []
    for path in sorted((root / "usr/share/doc/python3.11/html/_sources/faq").glob("*.rst.txt")):
        lines = path.read_text(encoding="utf-8").split("\n")
        heads = [i for i in range(len(lines) - 1) if lines[i].strip() and UNDERLINE.fullmatch(lines[i + 1].strip())
                 and len(lines[i + 1].strip()) >= len(lines[i].strip()) - 1]  # fmt: skip
        for n, start in enumerate(heads):
            end = heads[n + 1] if n + 1 < len(heads) else len(lines)
            title = lines[start].strip()
            if title.endswith("?"):
                sections.append({"question": title, "answer": _clean_rst(lines[start + 2 : end]),
                                 "id": f"{path.name.split('.')[0]}-{n}"})  # fmt: skip
    return sections


def debian_faq(root: Path) -> list[dict]:
    """(question, answer) sections of the Debian FAQ's plain-text edition."""
    with gzip.open(root / "usr/share/doc/debian/FAQ/debian-faq.en.txt.gz", "rt", encoding="utf-8") as fh:
        lines = fh.read().replace("\u00a0", " ").split("\n")
    heading = re.compile(r"^(\d+\.\d+)\. (\S.*)$")  # at the start of a line: the table of contents is indented
    sections, current = [], None
    for line in lines:
        found = heading.match(line)
        if line.startswith("Chapter "):
            current = None
        elif found:
            current = {"id": found.group(1), "question": found.group(2).strip(), "lines": [], "open": True}
            sections.append(current)
        elif current is not None and current["open"] and line.strip() and not line.startswith(" "):
            current["question"] += " " + line.strip()  # a heading wrapped onto a second line
        elif current is not None:
            current["open"] = current["open"] and bool(line.strip())
            current["lines"].append(line.strip())
    out = []
    for s in sections:
        answer = re.sub(r"(?<=\S)\n(?=\S)", " ", "\n".join(s["lines"]).strip())  # unwrap paragraphs
        if s["question"].endswith("?"):
            out.append({"id": s["id"], "question": s["question"], "answer": re.sub(r"\n{3,}", "\n\n", answer)})
    return out


def write(sections: list[dict], out: Path, name: str) -> tuple[int, int]:
    kept = [s for s in sections if len(s["answer"]) >= MIN_ANSWER]
    relevant: dict[str, list[str]] = {}
    for s in kept:
        relevant.setdefault(s["question"], []).append(s["id"])
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{name}.docs.jsonl", "w", encoding="utf-8") as fh:
        for s in kept:
            fh.write(json.dumps({"id": s["id"], "text": s["answer"]}, ensure_ascii=False) + "\n")
    with open(out / f"{name}.queries.jsonl", "w", encoding="utf-8") as fh:
        for question, ids in relevant.items():
            fh.write(json.dumps({"query": question, "relevant": ids}, ensure_ascii=False) + "\n")
    return len(kept), len(relevant)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="the folder the two .deb packages were unpacked into")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    for name, sections in (("python-faq", python_faq(args.root)), ("debian-faq", debian_faq(args.root))):
        docs, queries = write(sections, args.out, name)
        print(f"{name}: {docs} documents, {queries} queries")


if __name__ == "__main__":
    main()
