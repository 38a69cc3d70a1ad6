"""--ray: batch mode and index add on a real local Ray cluster (2 CPUs, loopback), equal to the local run."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile

import numpy as np
import pytest

TEXTS = ["a small model speaks", "the quick brown fox", "hello world", "cat dog bird", "naïve café 東京"]
RECORDS = [{"id": i, "text": f"{TEXTS[i % len(TEXTS)]} {i}", **({"tag": "x"} if i % 3 else {})} for i in range(24)]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def same_records(got, expected):
    """Same records in the same order: every field equal, probabilities within float tolerance."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.keys() == e.keys()
        assert {k: v for k, v in g.items() if k not in ("score", "scores")} == {
            k: v for k, v in e.items() if k not in ("score", "scores")
        }
        assert g["score"] == pytest.approx(e["score"], abs=2e-4)
        assert g["scores"] == pytest.approx(e["scores"], abs=2e-4)


@pytest.fixture(scope="module")
def cluster():
    """A Ray cluster of this test module: 2 CPUs, loopback only, stopped at the end."""
    ray = pytest.importorskip("ray", reason='Ray is not installed (pip install "nlpsuite[ray]")')
    pytest.importorskip("ray.data", reason="Ray Data is not installed")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    address = os.environ.pop("RAY_ADDRESS", None)
    try:
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            _temp_dir=temp,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    except Exception as exc:  # no shared memory, no free port, a sandbox without fork...
        shutil.rmtree(temp, ignore_errors=True)
        pytest.skip(f"a local Ray cluster cannot start here: {type(exc).__name__}: {exc}")
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)
    if address is not None:
        os.environ["RAY_ADDRESS"] = address


@pytest.fixture(scope="module")
def model(make_tiny_llama, tmp_path_factory):
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-ray"), context=4096)  # room for the task prompts


@pytest.fixture
def local_output(cli, model, tmp_path):
    """The records and the local batch mode's output for them."""
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    out = tmp_path / "local.jsonl"
    done = cli(["sentiment", "--input", str(source), "--output", str(out), "--model", str(model), "--device", "cpu"])
    assert done.code == 0, done.err
    return source, read_jsonl(out)


def ray_args(model, workers=2):
    return ["--model", str(model), "--device", "cpu", "--ray", "auto", "--workers", str(workers), "--batch-size", "4"]


@pytest.mark.shared_cache
def test_workers_or_ray_alone_are_refused_before_any_cluster(cli, model, tmp_path):
    got = cli(["sentiment", "nice", "--workers", "2", "--model", str(model)])
    assert got.code == 1 and "--workers needs --ray" in got.err
    got = cli(["sentiment", "nice", "--ray", "auto", "--model", str(model)])
    assert got.code == 1 and "--ray runs batch mode" in got.err


def test_without_ray_installed_the_error_says_how_to_get_it(monkeypatch):
    from nlpsuite import distributed
    from nlpsuite.errors import NlpsuiteError

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(NlpsuiteError, match=r'pip install "nlpsuite\[ray\]"'):
        distributed.connect("auto")


@pytest.mark.shared_cache
def test_an_interrupted_run_finishes_on_the_cluster_as_the_local_run_would(cluster, cli, model, local_output, tmp_path):
    source, expected = local_output
    out = tmp_path / "ray.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in expected]
    out.write_text("".join(lines[:10]) + lines[10][:15], encoding="utf-8")  # interrupted: the 11th line cut short
    run = ["sentiment", "--input", str(source), "--output", str(out), "--json", *ray_args(model)]
    done = cli(run)
    assert done.code == 0, done.err
    assert json.loads(done.out)["written"] == len(RECORDS) - 10
    same_records(read_jsonl(out), expected)
    again = cli(run)
    assert again.code == 0 and json.loads(again.out)["written"] == 0

    other = write_jsonl(tmp_path / "other.jsonl", [{"text": "something else"}] * 3)
    refused = cli(["sentiment", "--input", str(other), "--output", str(out), *ray_args(model)])
    assert refused.code == 1 and "is not an earlier output of this input" in refused.err


@pytest.mark.shared_cache
@pytest.mark.parametrize(
    "name, content", [("in.jsonl", '{"text": "fine"}\n\n{"text": "  "}\n'), ("in.csv", "text\nfine\n  \n")]
)
def test_a_bad_record_is_the_same_one_line_error_as_locally(cluster, cli, model, tmp_path, name, content):
    source = tmp_path / name
    source.write_text(content, encoding="utf-8")
    got = cli(["sentiment", "--input", str(source), "--output", str(tmp_path / "out.jsonl"), *ray_args(model)])
    assert got.code == 1 and got.err.strip() == f"error: {source}:3: 'text' is empty"
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.shared_cache
def test_a_killed_worker_is_replaced_and_every_record_written_once(cluster, cli, model, tmp_path):
    import psutil

    from nlpsuite import distributed
    from nlpsuite.api import Suite

    records = [{**r, "id": i} for i, r in enumerate(RECORDS * 4)]  # enough batches to outlive the kill
    source = write_jsonl(tmp_path / "in.jsonl", records)
    local = tmp_path / "local.jsonl"
    assert cli(["sentiment", "--input", str(source), "--output", str(local), "--model", str(model), "-q"]).code == 0
    killed = []

    def kill_a_worker(_n=0, total=None):  # called as each batch is written: kill once, mid-run
        if killed:
            return
        actors = [p for p in psutil.Process().children(recursive=True) if "TaskActor" in " ".join(p.cmdline())]
        assert actors, "no actor process found"
        os.kill(actors[0].pid, signal.SIGKILL)
        actors[0].wait(10)
        killed.append(actors[0].pid)

    task = Suite(model=str(model), device="cpu").task("sentiment")
    pool = distributed.Pool(model=str(model), device="cpu", workers=2)
    out = tmp_path / "ray.jsonl"
    written = distributed.run_task(task, source, out, pool, options=task.check_options({}), batch_size=4,
                                   progress=kill_a_worker)  # fmt: skip
    assert killed and written == len(records)
    same_records(read_jsonl(out), read_jsonl(local))  # each record once, in input order


@pytest.mark.shared_cache
def test_index_add_on_the_cluster_equals_the_local_index(cluster, cli, model, tmp_path):
    from nlpsuite.retrieval import index as store

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"d{i}.txt").write_text(f"{TEXTS[i % len(TEXTS)]} number {i}. " * (3 + 9 * i), encoding="utf-8")
    tiny = ["--model", str(model), "--device", "cpu"]
    assert cli(["index", "add", "here", str(docs), *tiny, "-q"]).code == 0
    done = cli(["index", "add", "there", str(docs), *tiny, "--ray", "auto", "--workers", "2", "--json"])
    assert done.code == 0, done.err
    local, remote = store.load("here"), store.load("there")
    assert remote.passages == local.passages and len(local.passages) > 6
    np.testing.assert_allclose(remote.embeddings, local.embeddings, atol=1e-4)
    hits = cli(["search", "there", "quick brown fox", "--json", *tiny])
    assert hits.code == 0, hits.err
