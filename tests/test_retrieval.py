"""Retrieval: chunking, fusion maths, the index life cycle and the CLI, on the tiny model; one e2e check."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.retrieval import chunking, fusion, store


def words(text: str) -> int:
    return len(text.split())


DOC = (
    "Alpha one two three. Beta four five six seven. Gamma eight nine.\n\n"
    "Delta ten eleven twelve thirteen. Epsilon fourteen fifteen. Zeta sixteen seventeen eighteen."
)


# --- chunking ---------------------------------------------------------------------------------


def test_passages_are_exact_slices_within_budget_and_cover_every_sentence():
    passages = chunking.chunk(DOC, words, max_tokens=8, overlap_tokens=0)
    assert all(p.text == DOC[p.start : p.end] and words(p.text) <= 8 for p in passages)
    for sentence in ("Alpha one two three.", "Gamma eight nine.", "Zeta sixteen seventeen eighteen."):
        assert any(sentence in p.text for p in passages)
    assert all(p.text[-1] in ".!?" for p in passages)  # cut at sentence ends, never mid-sentence


def test_a_cut_inside_a_paragraph_repeats_the_last_sentence_but_a_paragraph_break_does_not():
    passages = chunking.chunk(DOC, words, max_tokens=9, overlap_tokens=5)
    texts = [p.text for p in passages]
    assert texts[0] == "Alpha one two three. Beta four five six seven."
    assert texts[1] == "Beta four five six seven. Gamma eight nine."  # overlap: "Beta..." again
    assert texts[2].startswith("Delta")  # a new paragraph starts clean
    assert not any("nine.\n\nDelta" in t for t in texts)


def test_paragraphs_stay_apart_once_a_passage_is_half_full():
    passages = chunking.chunk(DOC, words, max_tokens=20, overlap_tokens=0)
    assert [p.text.split()[0] for p in passages] == ["Alpha", "Delta"]
    short = "Title\n\nBody one two three."
    heading_joins_its_text = chunking.chunk(short, words, max_tokens=20, overlap_tokens=0)
    assert [p.text for p in heading_joins_its_text] == [short]


def test_markdown_headings_start_passages_and_hard_wrapped_sentences_stay_whole():
    doc = "# Title\n\nIntro line one\ncontinues here. Second sentence.\n\n## Part\n\n- item one\n- item two"
    assert [p.text for p in chunking.chunk(doc, words, max_tokens=50, overlap_tokens=0)] == [
        "# Title\n\nIntro line one\ncontinues here. Second sentence.",
        "## Part\n\n- item one\n- item two",
    ]
    wrapped = "Alpha beta gamma\ndelta epsilon. Zeta eta theta iota."
    # had the line break ended a sentence, "delta epsilon." would fit the overlap and open passage 2
    assert [p.text for p in chunking.chunk(wrapped, words, max_tokens=8, overlap_tokens=3)][1] == "Zeta eta theta iota."


def test_the_whitespace_between_sentences_counts_against_the_budget():
    passages = chunking.chunk("aaaa. bbbb.\n    cccc.", len, max_tokens=10, overlap_tokens=0)
    assert [p.text for p in passages] == ["aaaa.", "bbbb.", "cccc."]  # "aaaa. bbbb." is 11 characters


def test_an_over_long_sentence_or_word_is_split_to_fit():
    sentence = " ".join(f"w{i}" for i in range(50))
    passages = chunking.chunk(sentence, words, max_tokens=8, overlap_tokens=0)
    assert all(words(p.text) <= 8 for p in passages)
    assert " ".join(p.text for p in passages) == sentence
    blob = "x" * 100
    pieces = chunking.chunk(blob, lambda t: len(t) // 10 + 1, max_tokens=3, overlap_tokens=0)
    assert "".join(p.text for p in pieces) == blob and all(len(p.text) // 10 + 1 <= 3 for p in pieces)


def test_empty_text_has_no_passages():
    assert chunking.chunk(" \n\n ", words) == []


# --- fusion -----------------------------------------------------------------------------------


def test_score_mix_scales_bm25_by_the_best_passage():
    got = fusion.score_mix(np.array([0.8, 0.4]), np.array([2.0, 1.0]), dense_weight=0.75)
    assert got == pytest.approx([0.75 * 0.8 + 0.25 * 1.0, 0.75 * 0.4 + 0.25 * 0.5])
    assert fusion.score_mix(np.array([0.5]), np.array([0.0]), 0.5) == pytest.approx([0.25])  # no term matched


# --- documents and the index life cycle on the tiny model ------------------------------------


@pytest.fixture
def suite(tiny_llama):
    from nlpsuite import Suite

    return Suite(model=str(tiny_llama), device="cpu")


@pytest.fixture
def name():
    return f"t-{uuid.uuid4().hex[:8]}"  # the tiny model's cache is shared: each test gets its own index


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "fox.txt").write_text("the quick brown fox jumps over the lazy dog.\n\nthe dog sleeps.")
    (folder / "sub" / "cats.md").write_text("# Cats\n\nnumbers like 1 2 3 and words like cat dog bird.")
    (folder / "skip.bin").write_bytes(b"\0\1\2")  # not a text suffix: a folder scan leaves it out
    (folder / "records.jsonl").write_text(
        json.dumps({"id": "hello-doc", "text": "hello world, this is a tiny test corpus"})
        + "\n"
        + json.dumps({"id": 7, "text": "a small model speaks in short sentences"})
        + "\n"
    )
    return folder


@pytest.mark.shared_cache
def test_index_round_trip(suite, name, corpus):
    counts = suite.index(name, [str(corpus)])
    assert counts["documents"] == 4 and counts["added"] == 4 and counts["passages"] >= 4
    store._LOADED.clear()  # as a fresh process would: read back from disk
    hits = suite.search(name, "a small model speaks in short sentences", k=3)
    assert [set(h) >= {"source", "text", "score"} for h in hits] == [True] * 3
    assert hits[0]["source"] == "7" and hits[0]["text"] == "a small model speaks in short sentences"
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    sources = {h["source"] for h in suite.search(name, "quick brown fox", k=10)}
    assert str((corpus / "fox.txt").resolve()) in sources and "hello-doc" in sources
    batch = suite.search(name, ["cat dog bird", "hello world"], k=1)
    assert len(batch) == 2 and batch[1][0]["source"] == "hello-doc"


@pytest.mark.shared_cache
def test_re_adding_a_changed_file_replaces_its_passages(suite, name, corpus):
    suite.index(name, [str(corpus)])
    fox = corpus / "fox.txt"
    fox.write_text("an entirely new text about a cat.")
    counts = suite.index(name, [str(corpus)])
    assert (counts["updated"], counts["unchanged"], counts["added"], counts["documents"]) == (1, 3, 0, 4)
    passages = store.load(name).passages
    fox_texts = [p["text"] for p in passages if p["source"] == str(fox.resolve())]
    assert fox_texts == ["an entirely new text about a cat."]
    assert not any("quick brown fox" in p["text"] for p in passages)
    again = suite.index(name, [str(fox)])
    assert (again["unchanged"], again["passages_added"]) == (1, 0)
    fox.write_text("  \n")
    emptied = suite.index(name, [str(corpus)])
    assert (emptied["updated"], emptied["empty"], emptied["documents"]) == (1, 1, 3)
    assert not any(p["source"] == str(fox.resolve()) for p in store.load(name).passages)


@pytest.mark.shared_cache
def test_an_interrupted_add_leaves_the_index_as_it_was(suite, name, corpus, monkeypatch):
    from nlpsuite import retrieval

    suite.index(name, [str(corpus / "fox.txt")])
    before = store.load(name).passages

    def interrupted(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(retrieval, "_embed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        suite.index(name, [str(corpus / "sub")])
    store._LOADED.clear()
    assert store.load(name).passages == before
    assert len(list(store.index_dir(name).glob("gen-*"))) == 1


@pytest.mark.shared_cache
def test_rm_and_missing_index(suite, name, corpus, cli, tiny_llama):
    suite.index(name, [str(corpus / "fox.txt")])
    assert name in [m["name"] for m in store.list_indexes()]
    assert store.remove(name) and name not in [m["name"] for m in store.list_indexes()]
    with pytest.raises(NlpsuiteError, match=f"no index named '{name}'"):
        suite.search(name, "fox")
    result = cli(["index", "rm", name])
    assert result.code == 1 and result.err.strip() == f"error: no index named '{name}' (see 'nlpsuite index list')"


@pytest.mark.shared_cache
def test_bad_files_and_queries_are_one_line_errors(suite, name, tmp_path, cli, tiny_llama):
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café".encode("latin-1"))
    tiny = ["--model", str(tiny_llama), "--device", "cpu"]
    for path, message in ((binary, "is a binary file, not text"), (latin1, "is not UTF-8 text")):
        result = cli(["index", "add", name, str(path), *tiny])
        assert result.code == 1 and result.err.strip() == f"error: {path} {message}"
    missing = cli(["index", "add", name, str(tmp_path / "nope.txt"), *tiny])
    assert missing.code == 1 and "nope.txt: no such file or folder" in missing.err
    bad_jsonl = tmp_path / "bad.jsonl"
    bad_jsonl.write_text('{"text": "no id"}\n')
    no_id = cli(["index", "add", name, str(bad_jsonl), *tiny]).err.strip()
    assert no_id.endswith("bad.jsonl:1: missing column 'id'")
    no_index = cli(["search", name, "x", *tiny]).err.strip()
    assert no_index == f"error: no index named '{name}' (see 'nlpsuite index list')"
    good = tmp_path / "good.txt"
    good.write_text("the dog sleeps.")
    suite.index(name, [str(good)])
    assert cli(["search", name, "  ", *tiny]).err.strip() == "error: empty query"
    with pytest.raises(NlpsuiteError, match="empty query"):
        suite.search(name, [""])
    assert cli(["index", "add", "../evil", str(good), *tiny]).err.startswith("error: bad index name")


@pytest.mark.shared_cache
def test_an_index_refuses_another_model(suite, name, corpus, make_tiny_llama, tmp_path_factory):
    from nlpsuite import Suite

    suite.index(name, [str(corpus / "fox.txt")])
    other = Suite(model=str(make_tiny_llama(tmp_path_factory.mktemp("other"), seed=1)), device="cpu")
    with pytest.raises(NlpsuiteError, match=f"index '{name}' was embedded with .*use that model or rebuild"):
        other.search(name, "fox")
    with pytest.raises(NlpsuiteError, match="was embedded with"):
        other.index(name, [str(corpus / "sub")])


@pytest.mark.shared_cache
def test_cli_json_schemas_and_batch_mode(cli, tiny_llama, name, corpus, tmp_path):
    tiny = ["--model", str(tiny_llama), "--device", "cpu"]
    added = json.loads(cli(["index", "add", name, str(corpus), "--json", "--quiet", *tiny]).out)
    assert added["index"] == name and added["documents"] == 4 and added["added"] == 4
    listed = json.loads(cli(["index", "list", "--json"]).out)
    row = next(r for r in listed["indexes"] if r["name"] == name)
    assert row["documents"] == 4 and row["passages"] == added["passages"] and row["model"]
    found = json.loads(cli(["search", name, "hello world", "-k", "2", "--json", *tiny]).out)
    assert len(found["results"]) == 2
    assert all(isinstance(r["source"], str) and isinstance(r["text"], str) for r in found["results"])
    assert all(isinstance(r["score"], float) for r in found["results"])
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"text": q, "qid": i}) + "\n" for i, q in enumerate(["fox", "cat"])))
    out = tmp_path / "out.jsonl"
    assert cli(["search", name, "--input", str(queries), "--output", str(out), "-k", "3", "--quiet", *tiny]).code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["qid"] for r in rows] == [0, 1] and all(len(r["results"]) == 3 for r in rows)
    plain = cli(["search", name, "hello world", "-k", "1", *tiny])
    assert plain.code == 0 and "1. hello-doc" in plain.out
    assert cli(["index", "rm", name, "--json"]).out.strip() == json.dumps({"removed": name}, indent=2).strip()


def test_the_search_task_is_registered():
    from nlpsuite.plugins import registry

    assert registry().tasks["search"].head == "embedding"


# --- end to end on the real default model ---------------------------------------------------


@pytest.mark.e2e
def test_a_relevant_passage_ranks_first_on_the_default_model(tmp_path):
    from nlpsuite import Suite

    docs = {
        "volcano.txt": "A volcano is an opening in the crust of a planet through which lava, ash and gases escape. "
        "Mount Etna in Sicily is one of the most active volcanoes in the world.",
        "bread.md": "# Baking bread\n\nMix flour, water, salt and yeast. Knead the dough for ten minutes, let it "
        "rise for an hour, then bake it in a hot oven until the crust is brown.",
        "football.txt": "Football is played by two teams of eleven players who try to kick the ball into the "
        "other team's goal. The World Cup is held every four years.",
        "python.txt": "Python is a programming language. Its functions are defined with the def keyword and "
        "indentation marks the blocks of code.",
    }
    for file, text in docs.items():
        (tmp_path / file).write_text(text)
    suite = Suite(device="cpu")
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    try:
        suite.index(name, [str(tmp_path)])
        for query, file in (
            ("How do I make a loaf of bread at home?", "bread.md"),
            ("Which mountain in Italy erupts lava?", "volcano.txt"),
            ("how many players are on a soccer team", "football.txt"),
        ):
            assert suite.search(name, query, k=1)[0]["source"] == str((tmp_path / file).resolve()), query
    finally:
        store.remove(name)
