"""The matrix's input files, built as the review describes each one (``data/`` beside the commands)."""

from __future__ import annotations

import json
import random
from pathlib import Path

AMAZON = (
    "The Amazon River in South America is the largest river by discharge volume of water in the world. "
    "The river was named by Francisco de Orellana, who explored it in 1542. "
    "It flows through Brazil, Peru and Colombia before reaching the Atlantic Ocean."
)
WORDS = [
    "the",
    "river",
    "city",
    "council",
    "voted",
    "library",
    "ocean",
    "water",
    "research",
    "team",
    "measured",
    "temperature",
    "station",
    "season",
    "fishing",
    "boats",
    "travel",
    "north",
    "coast",
    "players",
    "scored",
    "points",
    "championship",
    "final",
    "game",
    "fans",
    "arena",
    "parade",
]


def prose(chars: int, seed: int = 0) -> str:
    """English-like sentences in paragraphs, about ``chars`` characters."""
    rng = random.Random(seed)
    out, size = [], 0
    while size < chars:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "."
        out.append(sentence + ("\n\n" if rng.random() < 0.15 else " "))
        size += len(out[-1])
    return "".join(out)


def records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    moods = ["A wonderful, moving film.", "Dull and far too long.", "It was fine, nothing special."]
    return [{"id": f"r{i:03d}", "text": f"{rng.choice(moods)} ({i})"} for i in range(1, n + 1)]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def build(data: Path) -> None:
    """Every input file the cases read (the big ones once; a rerun keeps them)."""
    w = lambda name, text: (data / name).write_text(text, encoding="utf-8")  # noqa: E731
    w("amazon.txt", AMAZON)
    w("empty.txt", "")
    w("ws.txt", "  \t \n\n   \t\n")
    (data / "binary.bin").write_bytes(random.Random(1).randbytes(4096))
    (data / "latin1.txt").write_bytes("Un café très agréable.".encode("latin-1"))
    (data / "utf16.txt").write_bytes("A lovely film.".encode("utf-16"))
    w("nul.txt", "A lovely\0 film\0 with a great cast.")
    for name, size in (("big5mb.txt", 5_000_000), ("big1mb.txt", 1_000_000)):
        if not (data / name).exists():
            w(name, prose(size))
    if not (data / "nospace1mb.txt").exists():
        w("nospace1mb.txt", "a" * 1_000_000)
    write_jsonl(data / "good.jsonl", records(5))
    w("broken_mid.jsonl", '{"text": "one"}\n{"text": "two"}\n{"text": "thr\n{"text": "four"}\n')
    w("missing_text.jsonl", '{"text": "one"}\n{"body": "two"}\n')
    w("wrong_types.jsonl", '{"text": "one"}\n{"text": 42}\n[1, 2]\n')
    w("noheader.csv", "Great film,positive\nAwful film,negative\n")
    w("u2028.jsonl", json.dumps({"text": "Great film.\u2028Loved it."}, ensure_ascii=False) + "\n")
    w("evalbad.jsonl", '{"text": "good", "label": "positive"}\n{"text": "bad", "label": "negative"}\n{"text": "x"}\n')
    (data / "notamodel").mkdir(exist_ok=True)
    w("notamodel/readme.txt", "not a model")
    write_jsonl(
        data / "batch40.jsonl",
        [{"id": f"p{i:02d}", "text": f"Write two sentences about the number {i}."} for i in range(40)],
    )
    write_jsonl(data / "batch120.jsonl", records(120, seed=2))
    if not (data / "sent1mb.jsonl").exists():
        write_jsonl(data / "sent1mb.jsonl", records(8000, seed=3))
    write_jsonl(data / "empty_rec.jsonl", [{"text": "Fine."}, {"text": ""}, {"text": "Great."}])
    write_jsonl(data / "zw.jsonl", [{"text": "\u200b\u200b"}])
    w("zw_only.txt", "\u200b\u200c\u200d\ufeff\u2060")
    docs = data / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "amazon.txt").write_text(AMAZON, encoding="utf-8")
    (docs / "plugins.md").write_text("# When a plugin breaks\n\n" + prose(3000, seed=5), encoding="utf-8")
    big = data / "bigdocs"
    big.mkdir(exist_ok=True)
    for i in range(40):
        (big / f"doc{i:02d}.txt").write_text(prose(2500, seed=100 + i), encoding="utf-8")
    texts(data)


def texts(data: Path) -> None:
    """The languages-and-text cases' files (LT)."""
    w = lambda name, text: (data / name).write_text(text, encoding="utf-8")  # noqa: E731
    han = "自然语言处理是计算机科学的一个分支它研究人与计算机之间用自然语言进行有效通信的各种理论和方法"
    if not (data / "zh1mb.txt").exists():
        w("zh1mb.txt", (han * (1_000_000 // len(han) // 3 + 1))[: 1_000_000 // 3])
    mixed = {
        "en": "The river flows to the sea.",
        "zh": "河流流向大海。",
        "ar": "النهر يتدفق إلى البحر.",
        "ru": "Река течёт к морю.",
        "hi": "नदी समुद्र की ओर बहती है।",
        "ja": "川は海へ流れる。",
        "el": "Ο ποταμός ρέει προς τη θάλασσα.",
        "he": "הנהר זורם אל הים.",
    }
    write_jsonl(data / "mixed.jsonl", [{"id": k, "text": v} for k, v in mixed.items()])
    w("mixed.txt", " ".join(mixed.values()))
    rtl = ["\u202eThe film was great\u202c", "\u2067النهر جميل\u2069 and nice", "\u200fשלום עולם"]
    write_jsonl(data / "rtl.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(rtl)])
    w("rtl.txt", " ".join(rtl))
    emoji = ["👨‍👩‍👧‍👦 family day", "🏳️‍🌈 pride", "👩🏽‍💻 coding all night"]
    write_jsonl(data / "emoji.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(emoji)])
    w("bom_mid.txt", "First part.\ufeffSecond part of a nice text.")
    w("bom_mid.jsonl", '{"text": "one"}\n\ufeff{"text": "two"}\n')
    (data / "crlf.jsonl").write_bytes(b'{"text": "Great film."}\r\n{"text": "Awful film."}\r\n')
    (data / "crlf.csv").write_bytes(b'text,id\r\nGreat film.,1\r\n"Two\r\nlines",2\r\n')
    (data / "crlf.txt").write_bytes(AMAZON.replace(". ", ".\r\n").encode())
    write_jsonl(data / "lt12.jsonl", records(600, seed=7))
