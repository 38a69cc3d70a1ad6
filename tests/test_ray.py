"""--ray: batch mode and index add on a real local Ray cluster (2 CPUs, loopback), equal to the local run."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
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


def test_an_address_where_nothing_listens_is_one_line_within_seconds(cli, model, tmp_path):
    with socket.socket() as closed:  # a port that was free a moment ago: nothing listens there
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS[:2])
    started = time.monotonic()
    got = cli(["sentiment", "--input", str(source), "--output", str(tmp_path / "o.jsonl"), "--model", str(model),
               "--ray", f"127.0.0.1:{port}"])  # fmt: skip
    assert got.code == 1 and time.monotonic() - started < 30  # Ray alone retried for minutes
    assert got.err.strip() == (
        f"error: cannot connect to the Ray cluster at 127.0.0.1:{port}: nothing answers there (Connection refused)"
    )


def test_a_run_that_works_prints_no_ray_log_line(model, tiny_cache, tmp_path):
    """Ray's token note and its core worker's actor-restart error line went to stderr on every run that worked."""
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS[:4])
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "NLPSUITE_HOME": str(tiny_cache)}
    env.pop("RAY_ADDRESS", None)
    args = ["sentiment", "--input", str(source), "--output", str(out), "--model", str(model), "--device", "cpu"]
    done = subprocess.run([sys.executable, "-m", "nlpsuite", *args, "--ray", "local", "--workers", "1", "-q"],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0 and done.stderr == ""
    assert len(read_jsonl(out)) == 4


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
def test_a_parquet_input_on_the_cluster_gives_the_local_output(cluster, cli, model, local_output, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, expected = local_output
    source = tmp_path / "in.parquet"
    columns = {name: [r.get(name) for r in RECORDS] for name in ("id", "text", "tag")}
    pq.write_table(pa.table(columns), source)  # rows without 'tag' hold null there
    out = tmp_path / "ray.jsonl"
    done = cli(["sentiment", "--input", str(source), "--output", str(out), *ray_args(model)])
    assert done.code == 0, done.err
    nulls = [{**e, "tag": e.get("tag")} for e in expected]  # a Parquet row has every column: null where absent
    same_records(read_jsonl(out), nulls)


@pytest.mark.shared_cache
def test_an_input_given_as_a_url_is_read_by_ray_data(cluster, cli, model, local_output, tmp_path):
    source, expected = local_output
    out = tmp_path / "ray.jsonl"
    done = cli(["sentiment", "--input", source.resolve().as_uri(), "--output", str(out), *ray_args(model)])
    assert done.code == 0, done.err
    same_records(read_jsonl(out), expected)


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
def test_an_input_field_is_never_overwritten_on_the_cluster_either(cluster, cli, model, tmp_path):
    source = tmp_path / "gold.csv"
    source.write_text("text,label\nlovely film,positive\nawful,negative\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    local = cli(["sentiment", "--input", str(source), "--output", str(out), "--model", str(model), "-q"])
    on_ray = cli(["sentiment", "--input", str(source), "--output", str(out), *ray_args(model)])
    assert on_ray.code == local.code == 1 and on_ray.err == local.err
    assert "the record already has 'label', which batch output would overwrite: add --output-prefix" in on_ray.err
    assert not out.exists()
    done = cli(
        ["sentiment", "--input", str(source), "--output", str(out), "--output-prefix", "pred_", *ray_args(model)]
    )
    assert done.code == 0, done.err
    got = read_jsonl(out)
    assert [r["label"] for r in got] == ["positive", "negative"] and all("pred_label" in r for r in got)


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

    def _command_line(process) -> str:
        """A child's command line; "" for one that ended (a zombie) or went away while we looked."""
        try:
            return " ".join(process.cmdline())
        except (psutil.ZombieProcess, psutil.NoSuchProcess, psutil.AccessDenied):
            return ""

    def kill_a_worker(
        n=0, total=None
    ):  # called with the total first, then as each batch is written: kill once, mid-run
        if killed or not n:
            return
        actors = [p for p in psutil.Process().children(recursive=True) if "TaskActor" in _command_line(p)]
        assert actors, "no actor process found"
        os.kill(actors[0].pid, signal.SIGKILL)
        actors[0].wait(10)
        killed.append(actors[0].pid)

    task = Suite(model=str(model), device="cpu").task("sentiment")
    pool = distributed.Pool(model=str(model), device="cpu", workers=2)
    out = tmp_path / "ray.jsonl"
    summary = distributed.run_task(task, source, out, pool, options=task.check_options({}), batch_size=4,
                                   progress=kill_a_worker)  # fmt: skip
    assert killed and summary.written == len(records)
    same_records(read_jsonl(out), read_jsonl(local))  # each record once, in input order


@pytest.mark.shared_cache
def test_index_add_on_the_cluster_equals_the_local_index(cluster, cli, model, tmp_path):
    from nlpsuite.retrieval import index

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"d{i}.txt").write_text(f"{TEXTS[i % len(TEXTS)]} number {i}. " * (3 + 9 * i), encoding="utf-8")
    tiny = ["--model", str(model), "--device", "cpu"]
    assert cli(["index", "add", "here", str(docs), *tiny, "-q"]).code == 0
    done = cli(["index", "add", "there", str(docs), *tiny, "--ray", "auto", "--workers", "2", "--json"])
    assert done.code == 0, done.err
    local, remote = index.load("here"), index.load("there")
    assert remote.passages == local.passages and len(local.passages) > 6
    np.testing.assert_allclose(remote.embeddings, local.embeddings, atol=1e-4)
    hits = cli(["search", "there", "quick brown fox", "--json", *tiny])
    assert hits.code == 0, hits.err


@pytest.fixture(scope="module")
def started_head():
    """A head started apart, as a user would (`ray start --head`, 2 CPUs), that requires a token; stopped at the end.

    Its processes share one new session, so the teardown stops exactly them (`ray stop` would stop every Ray
    of this user on the machine). Ray's servers listen on every interface whatever --node-ip-address says;
    the token, kept in this cluster's temp folder, is what keeps others out.
    """
    pytest.importorskip("ray", reason='Ray is not installed (pip install "nlpsuite[ray]")')
    temp = Path(tempfile.mkdtemp(prefix="rayh", dir="/tmp"))  # short: Ray's socket paths must fit in 107 bytes
    token = temp / "token"
    token.write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # RAY_TMPDIR: its files, and the address `auto` reads, go to temp/ray; PYTHONPATH: the workers import this checkout
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_TMPDIR=str(temp), PYTHONPATH=str(ROOT))
    start = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--node-ip-address", "127.0.0.1",
             "--port", "0", "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats"]  # fmt: skip
    head = subprocess.Popen(start, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 5)):  # its GCS may outlive a SIGTERM
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _group_alive(head.pid):
                time.sleep(0.2)
        shutil.rmtree(temp, ignore_errors=True)

    try:
        said, _ = head.communicate(timeout=120)
        address = (temp / "ray" / "ray_current_cluster").read_text().strip()
    except (subprocess.TimeoutExpired, OSError):
        stop()
        pytest.skip("`ray start --head` did not start a cluster here within 120 s")
    if head.returncode != 0:
        stop()
        pytest.skip(f"`ray start --head` cannot start a cluster here: {said.decode(errors='replace')[-300:]}")
    yield {"port": address.rsplit(":", 1)[1], "temp": temp, "token": token}
    stop()


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies waiting for their parent do not count)."""
    import psutil

    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def nlpsuite(args, env):
    """The CLI in a process of its own, as a user runs it (Ray's settings are read once per process)."""
    return subprocess.run([sys.executable, "-m", "nlpsuite", *args], env=env, capture_output=True, text=True,
                          timeout=240, cwd=ROOT)  # fmt: skip


@pytest.mark.shared_cache
def test_a_cluster_started_by_ray_start_is_joined_with_its_token_or_refused_in_one_line(
    started_head, model, local_output, tmp_path
):
    source, expected = local_output
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # The user's settings: the cluster's token where Ray reads it, no RAY_AUTH_MODE; RAY_TMPDIR only so that
    # `auto` finds this cluster rather than another one of this machine
    env.update(RAY_AUTH_TOKEN_PATH=str(started_head["token"]), RAY_TMPDIR=str(started_head["temp"]),
               PYTHONPATH=str(ROOT))  # fmt: skip
    for address in (f"127.0.0.1:{started_head['port']}", "auto"):
        out = tmp_path / f"ray-{address.replace(':', '-')}.jsonl"
        args = ray_args(model)
        args[args.index("auto")] = address
        done = nlpsuite(["sentiment", "--input", str(source), "--output", str(out), "-q", *args], env)
        assert done.returncode == 0, f"--ray {address}: {done.stderr[-2000:]}"
        same_records(read_jsonl(out), expected)

    env["RAY_NUM_REDIS_GET_RETRIES"] = "2"  # Ray retries a refused connection 20 times, a second apart
    wrong = tmp_path / "wrong-token"
    wrong.write_text(secrets.token_hex(32))
    address = f"127.0.0.1:{started_head['port']}"
    for token, said in ((wrong, "refused this token"), (None, "requires a token: set RAY_AUTH_MODE=token")):
        if token is None:
            env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either
            del env["RAY_AUTH_TOKEN_PATH"]
        else:
            env["RAY_AUTH_TOKEN_PATH"] = str(token)
        refused = nlpsuite(["sentiment", "--input", str(source), "--output", str(tmp_path / "no.jsonl"),
                            "--ray", address, "--model", str(model)], env)  # fmt: skip
        assert refused.returncode == 1
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: the Ray cluster at {address} {said}"), lines
        assert "RAY_AUTH_TOKEN_PATH" in lines[0]


@pytest.mark.shared_cache
def test_extract_on_the_cluster_gives_the_local_objects(cluster, cli, model, tmp_path):
    """A structured task's schema (a JSON object option) travels to the workers: the same objects as locally."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = {"type": "object", "properties": {"mood": {"enum": ["calm", "sad"]}, "age": {"type": "integer",
              "minimum": 0, "maximum": 99}}, "required": ["mood", "age"], "additionalProperties": False}  # fmt: skip
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(schema), encoding="utf-8")
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in ("Ana, 34, calm.", "Bo is sad.", "Cy", "Di")])
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    base = ["extract", "--schema", str(schema_file), "--input", str(source)]
    assert cli([*base, "--output", str(local), "--model", str(model), "--device", "cpu"]).code == 0
    done = cli([*base, "--output", str(remote), *ray_args(model)])
    assert done.code == 0, done.err
    assert read_jsonl(remote) == read_jsonl(local)
    for record in read_jsonl(remote):
        jsonschema.validate(record["data"], schema)
