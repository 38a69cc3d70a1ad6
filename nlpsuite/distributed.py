"""Batch mode and index embedding on a Ray cluster: one more front-end over the task declaration.

Ray Data reads the input file (JSONL, CSV, TSV or Parquet, on any filesystem Ray reads) and parses it with
the reader local batch mode uses; a pool of actors, each holding one Suite (the backbone loaded once per
actor), runs ``task.run`` on batches; the driver writes the output in input order through the local
appender, so every record is written exactly once and a re-run resumes after the last complete line. Ray
restarts an actor that dies (kill -9, lost node) and retries its batch.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batch import Layout, Summary, check_record, interrupted, output_names, run_records, writer
from .errors import Interrupted, NlpsuiteError
from .records import SUFFIXES, Progress, appender, dumps, parse_records, resumable


def connect(address: str) -> bool:
    """Join the Ray cluster at ``address`` (``auto``, ``local`` or ``host:port``); True if this started Ray.

    A cluster that ``ray start`` made on a machine holding a token requires that token (Ray 2.59+). Ray sends
    it for ``auto`` but never for an address given by hand; here a token found where Ray reads one is sent to
    a cluster on this machine too. Ray reads RAY_AUTH_MODE when it is imported, so this decides it first.
    """
    _check_answers(address)
    token = address != "local" and not os.environ.get(_AUTH_MODE) and _token_here() and _on_this_machine(address)
    if token:
        os.environ[_AUTH_MODE] = "token"  # for Ray in this process and the processes it starts
    try:
        import ray
    except ImportError:
        if token:
            del os.environ[_AUTH_MODE]
        raise NlpsuiteError('--ray needs Ray: pip install "nlpsuite[ray]"') from None
    if ray.is_initialized():
        return False  # the caller (a notebook, a test) chose its cluster already
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}  # stdout may be the output
    log = _ray_log()  # Ray's own lines (its C++ client retries, token notes...) go there, not on stderr
    start = os.fstat(log.fileno()).st_size
    try:
        if address == "local":
            # a cluster for trying things out serves nobody else: loopback only, no dashboard
            ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        said = os.pread(log.fileno(), os.fstat(log.fileno()).st_size - start, start).decode("utf-8", "replace")
        raise NlpsuiteError(_refusal(address, exc, said)) from None
    return True


_RAY_LOG: list = []  # the file this process's stderr descriptor writes to once Ray runs here


def _ray_log():
    """From now on, what is written to this process's stderr descriptor (Ray's C++ core worker and Python loggers:
    token notes, actor-restart notes on runs that work) goes to a file, while nlpsuite's own lines (sys.stderr)
    still reach the terminal: a run that works shows no Ray log line. NLPSUITE_RAY_LOGS=1 leaves them on stderr.
    The file is read to explain a refused connection."""
    if not _RAY_LOG:
        sink = tempfile.TemporaryFile()  # noqa: SIM115 - open as long as the process
        if os.environ.get("NLPSUITE_RAY_LOGS", "") in ("", "0"):
            sys.stderr.flush()
            terminal = os.dup(2)
            os.dup2(sink.fileno(), 2)
            encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
            sys.stderr = open(terminal, "w", encoding=encoding, errors="backslashreplace", buffering=1)  # noqa: SIM115
        _RAY_LOG.append(sink)
    return _RAY_LOG[0]


def _check_answers(address: str, timeout: float = 3.0) -> None:
    """Refuse at once a host:port where nothing listens: Ray itself retries such an address for minutes."""
    if address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise NlpsuiteError(f"--ray {address}: give auto, local or host:port")
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
    except (OSError, ValueError, OverflowError) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise NlpsuiteError(f"cannot connect to the Ray cluster at {address}: nothing answers there ({why})") from None


_AUTH_MODE = "RAY_AUTH_MODE"
_TOKEN_HELP = "RAY_AUTH_TOKEN_PATH to a file holding its token (`ray get-auth-token` on its head prints it)"


def _token_here() -> bool:
    """Whether Ray finds a token: RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names, else ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        return bool(path.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        return False


def _on_this_machine(address: str) -> bool:
    """Whether ``address`` (``auto``, host:port) is a cluster of this machine: one of its addresses can be bound."""
    if address == "auto":
        return True  # what Ray's `auto` finds is the cluster `ray start` made here
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    for family, _, _, _, where in found:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((where[0], 0))
            return True
        except OSError:
            continue
    return False


def _refusal(address: str, exc: BaseException, said: str) -> str:
    """One line on why the cluster at ``address`` was not joined."""
    if "InvalidAuthToken" in said or "Unauthenticated" in said:
        if os.environ.get(_AUTH_MODE, "").lower() == "token":
            return f"the Ray cluster at {address} refused this token: set {_TOKEN_HELP}"
        return f"the Ray cluster at {address} requires a token: set RAY_AUTH_MODE=token and {_TOKEN_HELP}"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"cannot connect to the Ray cluster at {address}: {first}"


def disconnect() -> None:
    import ray

    ray.shutdown()


@dataclass(frozen=True)
class Pool:
    """The actor pool: how many actors, what each one loads, and the threads each one runs."""

    model: str | None = None
    device: str = "cpu"
    precision: str = "fp32"
    workers: int | None = None  # None: as many as the cluster's CPUs allow
    threads: int | None = None  # per actor; None: NLPSUITE_THREADS of this process, else 1

    def thread_count(self) -> int:
        given = self.threads if self.threads is not None else os.environ.get("NLPSUITE_THREADS") or "1"
        if not str(given).isdigit() or int(given) < 1:
            raise NlpsuiteError(f"NLPSUITE_THREADS must be a whole number, not {given!r}")
        return int(given)

    def size(self) -> int:
        import ray

        if self.workers is not None:
            if self.workers < 1:
                raise NlpsuiteError("--workers must be at least 1")
            return self.workers
        return max(1, int(ray.cluster_resources().get("CPU", 1)) // self.thread_count())

    def model_key(self) -> str:
        """The model's cache key, as this process resolves it (no model is loaded here)."""
        from .modelstore.resolve import resolve
        from .plugins import registry

        return resolve(self.model, registry().models).key

    def env(self) -> dict[str, str]:
        """What each actor sets before it loads the model; the cache is shared only when NLPSUITE_HOME says where."""
        env = {"NLPSUITE_THREADS": str(self.thread_count())}
        for name in ("NLPSUITE_HOME", "HF_HUB_OFFLINE", "NLPSUITE_STRICT_PLUGINS"):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    def map_args(self, actor: type, batch_size: int, **kwargs) -> dict:
        """``map_batches`` arguments that run ``actor`` on this pool."""
        from ray.data import ActorPoolStrategy

        return {
            "fn": actor,
            "fn_constructor_kwargs": {
                "env": self.env(),
                "model": self.model,
                "device": self.device,
                "precision": self.precision,
                **kwargs,
            },
            "batch_size": batch_size,
            "batch_format": "numpy",
            "compute": ActorPoolStrategy(size=self.size()),
            "num_cpus": self.thread_count(),
            **({"num_gpus": 1} if self.device == "cuda" else {}),
        }


class SuiteActor:
    """One Suite per actor: the backbone is loaded once, when the actor starts (and again if it is restarted)."""

    def __init__(self, env: dict, model: str | None, device: str, precision: str) -> None:
        os.environ.update(env)  # before the backbone's session reads NLPSUITE_THREADS
        from .api import Suite

        self.suite = Suite(model=model, device=device, precision=precision)
        self.suite.backbone  # noqa: B018 - load now, not inside the first batch


class TaskActor(SuiteActor):
    """``task.run`` on a batch of records (JSON text): the output records as JSON text."""

    def __init__(self, task, shared: dict, options: dict, layout: Layout, **suite) -> None:
        super().__init__(**suite)
        self.task, self.shared, self.options, self.layout = task, shared, options, layout

    def __call__(self, batch: dict) -> dict:
        records = [json.loads(r) for r in batch["record"]]
        try:
            added = run_records(self.task, self.suite, records, self.shared, self.options, self.layout)
        except KeyboardInterrupt:  # Ctrl-C reaches the local workers too
            raise NlpsuiteError("interrupted: a record was cut short, so this batch is not written") from None
        lines = [dumps({**r, **fields}) for r, fields in zip(records, added, strict=True)]
        return {"line": np.array(lines, dtype=object)}


class EmbeddingActor(SuiteActor):
    """The embedding head on a batch of passages."""

    def __call__(self, batch: dict) -> dict:
        return {"vector": self.suite.head("embedding")(list(batch["text"]))}


def _configure() -> None:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the output follows the input, as locally
    context.enable_progress_bars = False  # the CLI has its own bar on stderr
    # A failed batch comes back as our one-line error; Ray Data's own log of it is in the session's logs
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)


def _parse_file(row: dict, name: str, added: list[str], layout: Layout) -> list[dict]:
    """The records of one input file, checked as local batch mode checks them, as JSON text."""
    path = Path(name)
    raw = bytes(row["bytes"])
    if path.suffix.lower() != ".parquet":
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NlpsuiteError(f"{name} is not UTF-8 text") from None
    rows = parse_records(path, raw, **layout.columns())
    for line, record in rows:
        check_record(path, line, record, added, layout)
    return [{"record": dumps(record)} for _, record in rows]


def read(input_path: str | Path, batch_size: int, added: list[str] = (), layout: Layout = Layout()):
    """The input's records as JSON text, checked, in blocks of ``batch_size`` so that the actors share them;
    held in the cluster's object store (which spills to disk), not in this process."""
    import ray.data

    name = str(input_path)
    if Path(name).suffix.lower() not in SUFFIXES:
        raise NlpsuiteError(f"{name}: expected a .jsonl, .csv, .tsv or .parquet file")
    where = name
    if "://" not in name:  # a local path: any node may read it, so on several nodes it must be on a shared disk
        if not Path(name).is_file():
            raise NlpsuiteError(f"cannot read {name}: no such file")
        where = str(Path(name).resolve())
    checks = {"name": name, "added": list(added), "layout": layout}
    parsed = ray.data.read_binary_files(where).flat_map(_parse_file, fn_kwargs=checks)
    # Materialized before the actors start: they may hold every CPU, and a read or split task that waits
    # for one would stall them all (and a resume splits the records it has anyway).
    return parsed.repartition(target_num_rows_per_block=batch_size).materialize()


def _complete_lines(path: Path) -> int:
    """How many complete lines ``path`` holds, cutting nothing (``resumable`` checks them first)."""
    if str(path) == "-" or not path.is_file():
        return 0
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.endswith(b"\n") and line.strip())


def run_task(
    task,
    input_path: str | Path,
    output_path: Path,
    pool: Pool,
    shared: dict | None = None,
    options: dict | None = None,
    batch_size: int = 8,
    force: bool = False,
    progress: Progress | None = None,
    layout: Layout = Layout(),
    wait: bool = False,
) -> Summary:
    """Batch mode on the connected cluster: the records not yet in ``output_path``, with local batch mode's
    checks, layout and lock (nlpsuite.batch)."""

    _configure()
    progress = progress or (lambda _n=0, total=None: None)
    fresh = force or str(output_path) == "-"
    added = layout.added(output_names(task))
    summary = Summary()
    try:
        with writer(Path(output_path), wait):
            records = read(input_path, batch_size, added, layout)
            summary.total = records.count()  # counted already: the dataset is materialized
            if not fresh:
                lines = _complete_lines(output_path)
                if lines:  # the input's first lines, to check the output is theirs (materialized: a resume only)
                    head, records = records.split_at_indices([lines])
                    summary.resumed = resumable(output_path, [json.loads(r["record"]) for r in head.iter_rows()])
                else:
                    resumable(output_path, [])
            progress(summary.resumed, summary.total)
            if summary.resumed == summary.total:
                return summary
            actor = {"task": task, "shared": shared or {}, "options": options or {}, "layout": layout}
            out = records.map_batches(**pool.map_args(TaskActor, batch_size, **actor))
            with appender(output_path, fresh=fresh) as append:
                for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
                    written = [json.loads(line) for line in batch["line"]]
                    append(written)
                    summary.written += len(written)
                    summary.skipped += sum(layout.error_field in r for r in written) if layout.on_error == "skip" else 0
                    progress(len(written))
    except KeyboardInterrupt as exc:
        raise exc if isinstance(exc, Interrupted) else Interrupted(interrupted(output_path, summary)) from None
    except NlpsuiteError:
        raise
    except Exception as exc:
        raise _plain(exc) from None
    return summary


def embedder(pool: Pool, batch_size: int = 64) -> Callable[..., np.ndarray]:
    """``embed(texts, progress)`` on the connected cluster, for ``retrieval.add_documents``."""

    def embed(texts: list[str], progress: Progress | None = None) -> np.ndarray:
        import pyarrow as pa
        import ray.data

        _configure()
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths share a batch: less padding
        ranked = [texts[i] for i in order]
        blocks = [pa.table({"text": ranked[s : s + batch_size]}) for s in range(0, len(ranked), batch_size)]
        out, row = None, 0
        try:
            vectors = ray.data.from_arrow(blocks).map_batches(**pool.map_args(EmbeddingActor, batch_size))
            for batch in vectors.iter_batches(batch_size=None, batch_format="numpy"):
                found = batch["vector"]
                if out is None:
                    out = np.empty((len(texts), found.shape[1]), np.float32)
                out[order[row : row + len(found)]] = found
                row += len(found)
                if progress:
                    progress(len(found), len(texts))
        except NlpsuiteError:
            raise
        except Exception as exc:
            raise _plain(exc) from None
        return out

    return embed


def _plain(exc: BaseException) -> BaseException:
    """A worker's NlpsuiteError as the one-line error it is; anything else as it came.

    Ray hands back the worker's exception as ``.cause`` of a RayTaskError, or, when Ray Data wrapped it
    first, only as the text of its traceback.
    """
    pending, seen = [exc], set()
    while pending:
        found = pending.pop()
        if id(found) in seen:
            continue
        seen.add(id(found))
        if isinstance(found, NlpsuiteError) and type(found).__module__.startswith("nlpsuite"):
            return found
        pending += [e for e in (getattr(found, "cause", None), found.__cause__, found.__context__) if e is not None]
    said = _WORKER_ERROR.findall(str(exc))
    return NlpsuiteError(said[-1]) if said else exc


_WORKER_ERROR = re.compile(r"^nlpsuite\.errors\.\w*Error: (.+)$", re.MULTILINE)
