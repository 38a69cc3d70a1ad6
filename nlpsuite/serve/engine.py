"""The model thread: admits waiting sequences into one DecodeBatch between steps and hands their text back to
whoever asked (an asyncio handler, or a task's call on the jobs thread); task calls and embeddings run one at a
time on that second thread, and the text they generate joins the same batch (the engine is the suite's
decoder)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import NlpsuiteError
from ..runtime.batching import PREFILL_CHUNK, DecodeBatch
from ..runtime.sampling import SamplingParams
from ..runtime.sequence import Completion, Constraint, Sequence

log = logging.getLogger("nlpsuite.serve")


class QueueFull(Exception):
    """More requests wait than the server takes (answered 429)."""


@dataclass
class Ticket:
    """One request's sequences and where their events go: ``(index, kind, value)``, kind "text" (a delta),
    "logprobs" (the entries of the tokens chosen since the last, sent before their text), "done" (a Completion)
    or "error" (a message), delivered to ``events`` by ``deliver``."""

    deliver: Callable[[tuple], None]
    events: asyncio.Queue | queue.SimpleQueue
    sequences: list[Sequence] = field(default_factory=list)
    cancelled: bool = False
    logprobs_sent: dict[int, int] = field(default_factory=dict)  # per index: entries sent so far

    def emit(self, index: int, kind: str, value) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening any more
            self.deliver((index, kind, value))

    @classmethod
    def for_asyncio(cls) -> Ticket:
        loop, events = asyncio.get_running_loop(), asyncio.Queue()
        return cls(lambda event: loop.call_soon_threadsafe(events.put_nowait, event), events)

    @classmethod
    def for_thread(cls) -> Ticket:
        events = queue.SimpleQueue()
        return cls(events.put, events)


class Engine:
    """Continuous batching over the suite's backbone, plus a one-at-a-time lane for everything else."""

    def __init__(self, suite, max_batch: int = 16, max_queue: int = 64) -> None:
        self.suite = suite
        chunk = suite.prefill_chunk or PREFILL_CHUNK
        self.batch = DecodeBatch(suite.backbone, suite.tokenizer, suite.prompt_cache, chunk, serving=True)
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._waiting: collections.deque[tuple[Ticket, int]] = collections.deque()
        self._cancelled: list[Ticket] = []
        self._owner: dict[int, tuple[Ticket, int]] = {}  # id(sequence) -> its ticket and index
        self._wake = threading.Condition()
        self._closed = False
        self._jobs_waiting = 0
        self.cancelled_rows = 0  # rows freed because their client went away
        self.watch: Callable[[Ticket], None] = lambda ticket: None  # told of every ticket taken (serve/metrics.py)
        self._jobs = ThreadPoolExecutor(1, thread_name_prefix="nlpsuite-jobs")
        self._thread = threading.Thread(target=self._loop, name="nlpsuite-decode", daemon=True)
        self._thread.start()

    # -- generation ----------------------------------------------------------------------------------------

    def submit(
        self,
        prompts: list[list[int]],
        params: SamplingParams | list[SamplingParams],
        ticket: Ticket | None = None,
        constraints: list[Constraint | None] | None = None,
    ) -> Ticket:
        """Queue one sequence per prompt, with its own ``params`` where a list is given (checked here:
        NlpsuiteError for a bad one, QueueFull when full); a ticket for a thread is never refused for a full
        queue (its task call was let in already)."""
        ticket = ticket or Ticket.for_asyncio()
        constraints = constraints or [None] * len(prompts)
        each = params if isinstance(params, list) else [params] * len(prompts)
        rows = zip(prompts, each, constraints, strict=True)
        ticket.sequences = [self.batch.sequence(p, s, c) for p, s, c in rows]
        with self._wake:
            if self._closed:
                raise QueueFull("the server is shutting down")
            bounded = isinstance(ticket.events, asyncio.Queue)
            if bounded and len(self._waiting) + len(ticket.sequences) > self.max_queue:
                raise QueueFull(f"{len(self._waiting)} requests are waiting already")
            self.watch(ticket)
            self._waiting.extend((ticket, i) for i in range(len(ticket.sequences)))
            self._wake.notify()
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        """Free a ticket's slots before the next step (its client went away)."""
        with self._wake:
            if not ticket.cancelled:
                ticket.cancelled = True
                self._cancelled.append(ticket)
                self._wake.notify()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def active(self) -> int:
        return self.batch.size

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def jobs_waiting(self) -> int:
        return self._jobs_waiting

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not (self._closed or self._waiting or self._cancelled or self.batch.size):
                    self._wake.wait()
                if self._closed:
                    return
                cancelled, self._cancelled = self._cancelled, []
                room = self.max_batch - self.batch.size
                admitted = [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]
            for ticket in cancelled:
                for seq in ticket.sequences:
                    if self._owner.pop(id(seq), None):
                        self.batch.remove(seq)
                        self.cancelled_rows += 1
            for ticket, index in admitted:
                if not ticket.cancelled:
                    self._owner[id(ticket.sequences[index])] = (ticket, index)
                    self.batch.add([ticket.sequences[index]])
            try:
                for seq, delta in self.batch.step():
                    self._report(seq, delta)
            except Exception as exc:  # noqa: BLE001 - every row of the failed step is told, and the server goes on
                self._fail_batch(exc)

    def _report(self, seq: Sequence, delta: str) -> None:
        ticket, index = self._owner[id(seq)]
        if seq.error is not None:
            del self._owner[id(seq)]
            ticket.emit(index, "error", _message(seq.error))
            return
        if seq.logprobs is not None:  # a token's entry goes with its text (EOS's, which has none, is left out)
            sent, upto = ticket.logprobs_sent.get(index, 0), len(seq.stream.ids)
            if upto > sent:
                ticket.logprobs_sent[index] = upto
                ticket.emit(index, "logprobs", seq.logprobs[sent:upto])
        if delta:
            ticket.emit(index, "text", delta)
        if seq.done:
            del self._owner[id(seq)]
            ticket.emit(index, "done", seq.completion())

    def _fail_batch(self, exc: Exception) -> None:
        log.error("decode step failed: %s", _message(exc))
        for seq in self.batch.clear():
            if owner := self._owner.pop(id(seq), None):
                owner[0].emit(owner[1], "error", _message(exc))

    def generate(
        self,
        prompts: list[list[int]],
        params: SamplingParams,
        on_text=None,
        constraints: list[Constraint | None] | None = None,
    ) -> list[Completion]:
        """The suite's decoder in the server: a task call's sequences join the shared batch and this thread
        waits for them (``Decoder``)."""
        if not prompts:
            raise NlpsuiteError("empty prompt")
        ticket = self.submit(prompts, params, Ticket.for_thread(), constraints)
        done: dict[int, Completion] = {}
        while len(done) < len(prompts):
            try:
                index, kind, value = ticket.events.get(timeout=1.0)
            except queue.Empty:
                if self.closed:
                    raise NlpsuiteError("the server is shutting down") from None
                continue
            if kind == "text" and on_text:
                on_text(index, value)
            elif kind == "done":
                done[index] = value
            elif kind == "error":
                self.cancel(ticket)
                raise NlpsuiteError(value)
        return [done[i] for i in range(len(prompts))]

    # -- everything else: task calls and embeddings, one at a time ------------------------------------------

    async def job(self, work: Callable[[], object]):
        """Run ``work()`` on the jobs thread (QueueFull when too many wait)."""
        if self._jobs_waiting >= self.max_queue:
            raise QueueFull(f"{self._jobs_waiting} requests are waiting already")
        self._jobs_waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._jobs, work)
        finally:
            self._jobs_waiting -= 1

    def close(self) -> None:
        """Stop the threads; sequences still decoding end as cancelled."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=10)
        self._jobs.shutdown(wait=False, cancel_futures=True)


def _message(exc: Exception) -> str:
    if isinstance(exc, NlpsuiteError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
