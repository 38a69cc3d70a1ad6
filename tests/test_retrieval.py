"""Retrieval: fusion maths, the index life cycle and the CLI, on the tiny model; one e2e check."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.retrieval import fusion, index

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
    index._LOADED.clear()  # as a fresh process would: read back from disk
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
    passages = index.load(name).passages
    fox_texts = [p["text"] for p in passages if p["source"] == str(fox.resolve())]
    assert fox_texts == ["an entirely new text about a cat."]
    assert not any("quick brown fox" in p["text"] for p in passages)
    again = suite.index(name, [str(fox)])
    assert (again["unchanged"], again["passages_added"]) == (1, 0)
    fox.write_text("  \n")
    emptied = suite.index(name, [str(corpus)])
    assert (emptied["updated"], emptied["empty"], emptied["documents"]) == (1, 1, 3)
    assert not any(p["source"] == str(fox.resolve()) for p in index.load(name).passages)


@pytest.mark.shared_cache
def test_an_interrupted_add_leaves_the_index_as_it_was(suite, name, corpus, monkeypatch):
    from nlpsuite import retrieval

    suite.index(name, [str(corpus / "fox.txt")])
    before = index.load(name).passages

    def interrupted(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(retrieval, "_embed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        suite.index(name, [str(corpus / "sub")])
    index._LOADED.clear()
    assert index.load(name).passages == before
    assert len(list(index.index_dir(name).glob("gen-*"))) == 1


@pytest.mark.shared_cache
def test_a_full_disk_while_writing_is_one_line_and_leaves_no_partial_generation(suite, name, corpus, cli, tiny_llama,
                                                                                 monkeypatch):  # fmt: skip
    import builtins
    import errno

    suite.index(name, [str(corpus / "fox.txt")])
    before = index.load(name).passages
    real_open = builtins.open

    class Full:  # a file on a disk that fills up after its first bytes, as the OS reports it
        def __init__(self, fh):
            self.fh, self.written = fh, 0

        def write(self, data):
            if self.written > 100:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(data)
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def fills_up(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        return Full(fh) if str(path).endswith("embeddings.npy") and "w" in mode else fh

    monkeypatch.setattr(builtins, "open", fills_up)
    got = cli(["index", "add", name, str(corpus / "sub"), "--model", str(tiny_llama), "--device", "cpu"])
    assert got.code == 1 and "Traceback" not in got.err
    assert got.err.startswith("error: disk full: cannot write ") and "embeddings.npy" in got.err
    assert len(got.err.splitlines()) == 1
    index._LOADED.clear()
    assert index.load(name).passages == before  # still searchable, as it was
    assert len(list(index.index_dir(name).glob("gen-*"))) == 1  # the partial generation is gone


@pytest.mark.shared_cache
def test_an_add_that_fails_leaves_no_new_index_behind(suite, name, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(NlpsuiteError, match="nothing to index"):
        suite.index(name, [str(empty)])
    assert not index.index_dir(name).exists()


@pytest.mark.shared_cache
def test_rm_and_missing_index(suite, name, corpus, cli, tiny_llama):
    suite.index(name, [str(corpus / "fox.txt")])
    assert name in [m["name"] for m in index.list_indexes()]
    assert index.remove(name) and name not in [m["name"] for m in index.list_indexes()]
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


def huge_header(path):
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (10**11, 64)})
        fh.write(b"\0" * 64)


def rewrite_json(path, change):
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


TAMPERED = {
    "passages.json is a list": lambda gen: (gen / "passages.json").write_text("[1, 2, 3]"),
    "passages without source": lambda gen: rewrite_json(
        gen / "passages.json",
        lambda d: {**d, "passages": [{k: v for k, v in p.items() if k != "source"} for p in d["passages"]]},
    ),
    "passage text not a string": lambda gen: rewrite_json(
        gen / "passages.json", lambda d: {**d, "passages": [{**p, "text": 7} for p in d["passages"]]}
    ),
    "documents' counts do not add up": lambda gen: rewrite_json(
        gen / "passages.json",
        lambda d: {**d, "documents": {s: {**v, "passages": v["passages"] + 1} for s, v in d["documents"].items()}},
    ),
    "embeddings of another width": lambda gen: np.save(gen / "embeddings.npy", np.zeros((2, 10), np.float32)),
    "embeddings with other rows": lambda gen: np.save(gen / "embeddings.npy", np.zeros((99, 64), np.float32)),
    "embeddings claiming 1e11 rows": lambda gen: huge_header(gen / "embeddings.npy"),
    "embeddings with NaN": lambda gen: np.save(gen / "embeddings.npy", np.full((2, 64), np.nan, np.float32)),
    "embeddings far from unit rows": lambda gen: np.save(gen / "embeddings.npy", np.full((2, 64), 1e30, np.float32)),
    "embeddings as integers": lambda gen: np.save(gen / "embeddings.npy", np.zeros((2, 64), np.int64)),
    "embeddings as a pickle": lambda gen: np.save(gen / "embeddings.npy", np.array([{}], object), allow_pickle=True),
    "index.json counts not numbers": lambda gen: rewrite_json(
        gen.parent / "index.json", lambda m: {**m, "documents": "lots", "passages": 10**30}
    ),
    "index.json counts others": lambda gen: rewrite_json(gen.parent / "index.json", lambda m: {**m, "passages": 3}),
    "index.json model not recorded": lambda gen: rewrite_json(gen.parent / "index.json", lambda m: {**m, "model": 1}),
}


@pytest.mark.shared_cache
@pytest.mark.parametrize("tamper", list(TAMPERED))
def test_a_tampered_index_is_refused_in_one_line(suite, name, tmp_path, cli, tiny_llama, tamper):
    docs = tmp_path / "two.jsonl"
    docs.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(["the dog", "a cat"])))
    suite.index(name, [str(docs)])
    assert index.load(name).embeddings.shape == (2, 64)  # what the tampering assumes
    index._LOADED.clear()
    manifest = index.read_manifest(index.index_dir(name))
    TAMPERED[tamper](index.index_dir(name) / manifest["data"])
    result = cli(["search", name, "dog", "--model", str(tiny_llama), "--device", "cpu"])
    assert result.code == 1
    assert result.err.startswith(f"error: index '{name}' is damaged (") and len(result.err.splitlines()) == 1
    assert f"remove it with 'nlpsuite index rm {name}'" in result.err
    with pytest.raises(NlpsuiteError, match="is damaged"):
        suite.index(name, [str(docs)])
    assert cli(["index", "rm", name]).code == 0


@pytest.mark.shared_cache
def test_index_list_names_folders_and_checks_counts(suite, name, corpus, cli):
    import shutil

    suite.index(name, [str(corpus / "fox.txt")])
    for copy in (f"{name}-copy", f"{name}-bad"):
        shutil.copytree(index.index_dir(name), index.index_dir(copy))
    rewrite_json(index.index_dir(f"{name}-bad") / "index.json", lambda m: {**m, "documents": "lots"})
    listed = {r["name"]: r for r in json.loads(cli(["index", "list", "--json"]).out)["indexes"]}
    assert listed[f"{name}-copy"]["documents"] == 1 and listed[name]["documents"] == 1
    assert listed[f"{name}-bad"]["documents"] is None and listed[f"{name}-bad"]["model"] == "damaged"
    table = cli(["index", "list"])
    assert table.code == 0 and f"{name}-copy" in table.out and "lots" not in table.out
    for gone in (name, f"{name}-copy", f"{name}-bad"):
        assert cli(["index", "rm", gone]).code == 0


def test_the_search_task_is_registered():
    from nlpsuite.plugins import registry

    assert registry().tasks["search"].head == "embedding"


# --- BM25 terms by script and language -------------------------------------------------------


def test_unspaced_scripts_become_character_bigrams_and_english_keeps_its_terms():
    from nlpsuite.retrieval import terms

    english = "The runners were running quickly through the parks."
    assert terms.passage_terms([english])[0] == terms.legacy_terms([english])  # no English regression
    assert terms.query_terms(english, ["en"]) == terms.legacy_terms([english])[0]
    assert terms.passage_terms(["自然语言处理"])[0] == [["自然", "然语", "语言", "言处", "处理"]]
    assert terms.passage_terms(["巴西"])[0] == [["巴西"]] and terms.query_terms("巴", ["en"]) == ["巴"]
    assert terms.query_terms("我爱Python编程", ["en"]) == ["我爱", "编程", "python"]


def test_each_passage_is_stemmed_in_its_own_language():
    from nlpsuite.retrieval import terms

    french = "Les chats mangeaient des poissons dans la cuisine de la maison."
    got, languages = terms.passage_terms([french, "The cats were eating fish."])
    assert languages == ["en", "fr"]
    assert "chat" in got[0] and "le" not in got[0] and "les" not in got[0]  # French stems, French stop words
    assert "des" not in got[0] and "cat" in got[1]
    assert terms.query_terms("mangeaient", ["en"]) == ["mangeaient"]
    assert set(terms.query_terms("mangeaient", ["en", "fr"])) == {"mangeaient", "mang"}  # stemmed in both


CHINESE_DOCS = {
    "amazon": "亚马逊河是南美洲的一条大河，流经秘鲁、哥伦比亚和巴西，最后注入大西洋。",
    "tower": "埃菲尔铁塔位于法国巴黎，建于一八八七年至一八八九年，以工程师古斯塔夫·埃菲尔的名字命名。",
    "nlp": "自然语言处理是计算机科学的一个分支，它研究如何让计算机理解、生成和处理人类语言。",
    "fox": "The quick brown fox jumps over the lazy dog.",
    "chat": "Le chat dort sur le canapé pendant que les enfants jouent dans le jardin.",
}


@pytest.mark.shared_cache
def test_a_mixed_language_index_finds_chinese_english_and_french_by_bm25(suite, name, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(
        "".join(json.dumps({"id": k, "text": v}, ensure_ascii=False) + "\n" for k, v in CHINESE_DOCS.items())
    )
    suite.index(name, [str(path)])
    index._LOADED.clear()
    found = index.load(name)
    assert found.manifest["bm25"] == {"analyzer": "scripts-1", "languages": ["en", "fr"]}
    for query, source in (("巴西", "amazon"), ("铁塔在哪里？", "tower"), ("什么是自然语言处理？", "nlp"),
                          ("jumping foxes", "fox"), ("les chats", "chat")):  # fmt: skip
        scores = found.bm25_scores(query)
        best = found.passages[int(np.argmax(scores))]["source"]
        assert best == source and scores.max() > 0, query
    assert np.count_nonzero(found.bm25_scores("巴西")) == 1  # no other passage shares a term with it


@pytest.mark.shared_cache
def test_an_index_without_a_recorded_analyzer_is_searched_as_it_was_built(suite, name, corpus):
    suite.index(name, [str(corpus / "fox.txt")])
    folder = index.index_dir(name)
    manifest = json.loads((folder / "index.json").read_text())
    assert manifest["bm25"]["analyzer"] == "scripts-1"
    del manifest["bm25"]  # as the previous version wrote it
    (folder / "index.json").write_text(json.dumps(manifest))
    index._LOADED.clear()
    assert index.bm25_record(index.load(name).manifest)["analyzer"] == "english-1"
    assert suite.search(name, "foxes jumping", k=1)[0]["bm25"] > 0
    manifest["bm25"] = {"analyzer": "klingon-9", "languages": []}
    (folder / "index.json").write_text(json.dumps(manifest))
    index._LOADED.clear()
    with pytest.raises(NlpsuiteError, match="BM25 analyzer is not one this version knows"):
        index.load(name)


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
        index.remove(name)


@pytest.mark.e2e
def test_chinese_headlines_find_their_articles_on_the_default_model(tmp_path):
    from nlpsuite import Suite

    articles = {
        "satellite": "今天上午，一枚运载火箭在酒泉卫星发射中心点火升空，将一颗新一代气象卫星送入预定轨道。",
        "metro": "北京地铁一条全长三十公里的新线路于周六正式开通，沿线设有二十个车站，缩短了通勤时间。",
        "panda": "成都大熊猫繁育研究基地迎来一对双胞胎大熊猫幼崽，工作人员表示母子平安。",
        "volleyball": "在女排世界杯决赛中，中国女排以三比一战胜对手，以全胜战绩夺得冠军。",
        "typhoon": "今年第九号台风预计明天傍晚在福建沿海登陆，多地宣布中小学停课，渡轮全部停航。",
        "rice": "农业科学家培育出一种能在盐碱地上生长的水稻新品种，试验田亩产超过五百公斤。",
    }
    path = tmp_path / "news.jsonl"
    path.write_text("".join(json.dumps({"id": k, "text": v}, ensure_ascii=False) + "\n" for k, v in articles.items()))
    suite = Suite(device="cpu")
    name = f"e2e-zh-{uuid.uuid4().hex[:8]}"
    try:
        suite.index(name, [str(path)])
        for headline, source in (
            ("我国成功发射新一代气象卫星", "satellite"),
            ("北京地铁新线路开通运营", "metro"),
            ("大熊猫幼崽在成都基地顺利出生", "panda"),
            ("中国女排夺得世界杯冠军", "volleyball"),
            ("台风逼近东南沿海多地停课停航", "typhoon"),
            ("科学家培育出耐盐碱水稻新品种", "rice"),
            ("巴西", None),  # no article shares a term with it: no BM25 score anywhere
        ):
            best = suite.search(name, headline, k=1)[0]
            if source is None:
                assert best["bm25"] == 0
            else:
                assert best["source"] == source and best["bm25"] > 0, headline
    finally:
        index.remove(name)


def test_embeddings_are_written_as_numpy_writes_them(tmp_path):
    from nlpsuite.arrays import write_npy

    array = np.random.default_rng(0).normal(size=(300, 7)).astype(np.float32)
    write_npy(tmp_path / "ours.npy", array)
    np.save(tmp_path / "numpys.npy", array, allow_pickle=False)
    assert (tmp_path / "ours.npy").read_bytes() == (tmp_path / "numpys.npy").read_bytes()
