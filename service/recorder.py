"""The background writer of the check log and the usage counters.

A request must not wait for the database, and workers must not queue behind
one another on SQLite's single writer, so views hand :class:`CheckRecord` objects
and usage increments to a :class:`Recorder`, which returns at once. A daemon
thread writes what has piled up every ``interval`` seconds (0.2 by default), or
sooner once ``batch_size`` records wait: the pending checks in transactions of
``batch_size``, and one UPSERT per key and month for the counters. The same
thread purges checks older than ``retention_days`` when it starts and then at
most once per ``purge_every`` seconds, and with them the reports for the upstream
that were not delivered within that time.

Nothing here raises into a request. A failed write is logged by exception type
and, where they are known to hold no personal data, its driver's words
(:func:`store.error_text.error_text`: "database or disk is full", never a message as
such, which may quote a comment, an email or an IP). When the store cannot be reached (down, locked, restarting), nothing is dropped: the batch
goes back to the front of the queue, and the writer waits twice as long before
each next attempt, up to :data:`MAX_BACKOFF` seconds, so that a database coming
back is not met by a stampede of retries. A batch the store refuses for its data
(a value no column holds) is written in halves down to the records at fault,
which alone are dropped. The queue holds at most ``max_pending`` checks, the
oldest being dropped (and counted in the log) beyond that: the bound on what an
outage can cost. :meth:`close` stops the thread and writes what is left, trying
again (backing off) until ``close_deadline`` seconds have passed; what the store
still cannot take then goes to the spool on disk (:mod:`service.spool`), which the
next worker to start writes first, and the log says how many checks went there
(or were lost, with no spool directory). The app registers :meth:`close` with
``atexit`` and the gunicorn ``worker_exit`` hook (see :mod:`service.server`).

While the store cannot be reached the recorder says so (:attr:`Recorder.health`, a
:class:`service.check_log_health.WriteHealth`) from its first failed attempt until a write goes
through again: requests that would write the queue first (a report looking for its check) do
not, and need not wait on the writer's attempt (:meth:`Recorder.flush_for_a_request`). Until
2026-11-28 every attempt began by saying the store was reachable again, so a request arriving
during the writer's 10 s attempt on a locked SQLite file waited it out and then tried once more
itself: reports took 29-58 s and held the threads checks needed. :meth:`Recorder.holds` tells a
report whether its check is still waiting here.
"""
from __future__ import annotations

import calendar
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from service.check_log_health import WriteHealth
from service.metrics import count_check, count_checks_lost, count_checks_written
from service.spool import claim_spools, read_spool, set_aside, write_spool
from store import CheckRecord, Store, StoreCommitUnknownError, StoreDataError, current_month
from store.error_text import error_text
from store.keys import normalise_blog
from store.upstream import purge_upstream_reports

#: What a store raises for a record it cannot take (a value no column type holds, text that is
#: not Unicode), as opposed to a database that is busy or gone, which a later flush may get past.
_DATA_ERRORS: tuple[type[Exception], ...] = (StoreDataError, ValueError, TypeError, OverflowError)

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.2
DEFAULT_BATCH_SIZE = 200
DEFAULT_PURGE_EVERY = 3600.0
DEFAULT_MAX_PENDING = 50_000
#: How long :meth:`Recorder.close` keeps trying the store before it spools what is left: well
#: inside gunicorn's graceful timeout (30 s), as one SQLite attempt may wait 10 s on a lock.
DEFAULT_CLOSE_DEADLINE = 15.0
#: The longest one write may take when the store is locked (SQLite's busy wait, store.db).
ATTEMPT_SECONDS = 10.0
#: The longest the writer waits between attempts while the store keeps failing (seconds).
MAX_BACKOFF = 5.0
#: Check rows built between two moments the writer lets the request threads have the GIL (_paced).
YIELD_EVERY = 10
#: Most usage slots (key, month, blog) queued at once; see :meth:`Recorder.count_usage`.
MAX_USAGE_SLOTS = 10_000
#: The longest a request waits for the writer's write in progress before it reads without it.
#: A write of a batch takes milliseconds; one that takes longer is waiting on the store.
REQUEST_WAIT_SECONDS = 1.0


@dataclass
class _Pending:
    """What waits to be written: checks in order, and usage increments per (key id, month, blog)."""

    checks: deque[CheckRecord] = field(default_factory=deque)
    usage: dict[tuple[int, str, str], Counter[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.checks) + len(self.usage)

    def take_back(self, checks: Sequence[CheckRecord] = (),
                  usage: Iterable[tuple[tuple[int, str, str], Counter[str]]] = ()) -> None:
        """Put ``checks`` before the ones waiting (in their order) and add ``usage``'s increments."""
        self.checks.extendleft(reversed(checks))
        for slot, counter in usage:
            self.usage.setdefault(slot, Counter()).update(counter)


class Recorder:
    """Queues checks and usage increments and writes them in batches from one thread."""

    def __init__(self, store: Store, *, interval: float = DEFAULT_INTERVAL,
                 batch_size: int = DEFAULT_BATCH_SIZE, retention_days: int = 0,
                 purge_every: float = DEFAULT_PURGE_EVERY, max_pending: int = DEFAULT_MAX_PENDING,
                 spool_dir: Optional[Path] = None,
                 close_deadline: float = DEFAULT_CLOSE_DEADLINE,
                 on_health_change: Optional[Callable[[], None]] = None) -> None:
        self.store = store
        self.spool_dir = spool_dir
        self.close_deadline = close_deadline
        self.interval = interval
        self.batch_size = batch_size
        self.retention_days = retention_days
        self.purge_every = purge_every
        self.max_pending = max_pending
        self._pending = _Pending()
        self._queue_lock = threading.Lock()   # guards _pending; held for microseconds
        self._write_lock = threading.Lock()   # one flush at a time, so a flush() sees earlier writes done
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._last_purge: Optional[float] = None
        self._thread: Optional[threading.Thread] = None
        self.dropped = 0
        #: Whether the writes are going through, and since when they have not (see the module).
        self.health = WriteHealth(on_health_change)
        self._unreachable = False  # whether the flush under way found the store unreachable
        self._failure = ""  # the last failed write's error_text, for the log
        self._in_flight: Optional[_Pending] = None  # the batch being written (see _flush_locked)

    # --- producers (request threads) ----------------------------------------------------

    def record_check(self, record: CheckRecord) -> None:
        """Queue one check for the next flush (and count it in the metrics: every check passes here).

        O(1): an append to a deque under a lock held for that append (and, when the queue
        is over ``max_pending``, dropping its oldest entries one by one).
        """
        count_check(record.tier, record.surface)
        overflow = 0
        with self._queue_lock:
            checks = self._pending.checks
            checks.append(record)
            while len(checks) > self.max_pending:
                checks.popleft()
                overflow += 1
            # Wake the writer when a batch has just filled up, not on every check after that:
            # while the store is down the queue stays over a batch, and the writer backs off.
            full = len(checks) == self.batch_size
            if overflow:
                self.dropped += overflow
        if overflow:
            count_checks_lost("queue_full", overflow)
            log.warning("check log queue full: dropped %d oldest checks (%d so far)", overflow, self.dropped)
        if full and not self._wake.is_set():
            self._wake.set()

    def count_usage(self, key_id: Optional[int], month: Optional[str] = None, *, blog: str = "",
                    **increments: int) -> None:
        """Queue usage increments (``api_calls=1, spam=1``) for a key and the ``blog`` the call named.

        A no-op without a key. O(1).
        """
        if key_id is None or not any(increments.values()):
            return
        slot = (int(key_id), month or _this_month(), normalise_blog(blog) if blog else "")
        with self._queue_lock:
            usage = self._pending.usage
            counter = usage.get(slot)
            if counter is None:
                if len(usage) >= MAX_USAGE_SLOTS:
                    # The client chooses blog values: past this many (an outage, a client sending
                    # a new one each call), further ones count for the key's own site.
                    slot = slot[:2] + ("",)
                    counter = usage.get(slot)
                if counter is None:
                    counter = usage[slot] = Counter()
            for name, value in increments.items():
                if value:
                    counter[name] += value

    @property
    def pending(self) -> int:
        """How many checks and usage slots wait to be written."""
        with self._queue_lock:
            return len(self._pending)

    @property
    def store_unreachable(self) -> bool:
        """Whether the store failed the last write attempt as a whole (down, locked, full) rather
        than refusing some records; it stays so between attempts, until a write goes through."""
        return self.health.failing

    def holds(self, match: Callable[[CheckRecord], bool]) -> bool:
        """Whether a check that ``match`` accepts is waiting here unwritten (queued, or in the
        batch being written). For a report that missed its check in the store: linear in the
        queue, with the queue copied under the lock so that checks never wait on the search."""
        with self._queue_lock:
            waiting = list(self._pending.checks)
            flying = self._in_flight
        if flying is not None:
            waiting.extend(flying.checks)
        return any(match(record) for record in waiting)

    def status(self) -> dict[str, object]:
        """This worker's check log for ``/readyz``: writing or failing (since when, why), and queued."""
        with self._queue_lock:
            queued = len(self._pending.checks) + (len(self._in_flight.checks) if self._in_flight else 0)
        return self.health.status(queued)

    # --- the writer ---------------------------------------------------------------------

    def start(self) -> "Recorder":
        """Start the writer thread (idempotent)."""
        if self._thread is None and not self._closed:
            self._take_spools()
            self._thread = threading.Thread(target=self._run, name="commentguard-recorder", daemon=True)
            self._thread.start()
        return self

    def flush(self) -> bool:
        """Write everything queued so far, now, in the calling thread; False if a write failed.

        Afterwards :attr:`store_unreachable` says whether the store failed as a whole (what
        was not written is queued again) rather than refusing some records.
        """
        with self._write_lock:
            return self._flush_locked()

    def _flush_locked(self) -> bool:
        started = time.monotonic()
        with self._queue_lock:
            batch, self._pending = self._pending, _Pending()
            # In flight from the moment it leaves the queue, where close() can reach it if the
            # write never returns (a database that accepts and never answers: it spools it), and
            # where holds() finds its checks: they are in one place or the other, never neither.
            self._in_flight = batch if batch else None
        self._unreachable = False
        if not batch:
            return True
        try:
            ok = self._write_checks(batch.checks)
            if self._unreachable:
                # The counters would wait out the same outage (a SQLite lock: 10 s more).
                with self._queue_lock:
                    self._pending.take_back(usage=batch.usage.items())
                ok = False
            else:
                ok = self._write_usage(batch.usage) and ok
        finally:
            with self._queue_lock:
                self._in_flight = None
                queued = len(self._pending.checks)
        if self._unreachable:
            self.health.failed(started, self._failure, queued)
        else:
            self.health.wrote(queued)
        return ok

    def flush_for_a_request(self, wait: float = REQUEST_WAIT_SECONDS) -> bool:
        """:meth:`flush` for a request that reads what was queued; False if it did not write it all.

        Skipped while the writer finds the store unreachable: the writer is backing off, and a
        request would only wait on a store that is down (and log one more failure) to read
        nothing new. A write in progress is waited for ``wait`` seconds at most: one taking
        longer is waiting on the store (a SQLite lock: up to 10 s), and the request must not.
        """
        if self.health.failing:
            return False
        if not self._write_lock.acquire(timeout=wait):
            return False
        try:
            return self._flush_locked()
        finally:
            self._write_lock.release()

    def purge(self) -> int:
        """Delete checks past the retention period now; 0 when retention is off or the purge failed."""
        self._last_purge = time.monotonic()
        if self.retention_days <= 0:
            return 0
        try:
            removed = self.store.purge_checks(self.retention_days)
        except Exception as exc:  # noqa: BLE001 - logged; the next purge retries
            log.error("purging checks older than %d days failed: %s", self.retention_days, type(exc).__name__)
            return 0
        if removed:
            log.info("purged %d checks older than %d days", removed, self.retention_days)
        self._purge_upstream_reports()
        return removed

    def _purge_upstream_reports(self) -> None:
        """Drop reports for the upstream undelivered past the retention period (their payload holds
        IP and e-mail in clear; see :func:`store.upstream.purge_upstream_reports`)."""
        try:
            dropped = purge_upstream_reports(self.store, self.retention_days)
        except Exception as exc:  # noqa: BLE001 - logged; the next purge retries
            log.error("purging reports for the upstream older than %d days failed: %s", self.retention_days,
                      type(exc).__name__)
            return
        if dropped:
            log.warning("dropped %d reports for the upstream not delivered within %d days (the retention)",
                        dropped, self.retention_days)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread and write what is left (idempotent), within ``close_deadline`` seconds.

        The deadline counts from here. Attempts go on until it, but none starts unless the time
        left covers the longest one so far (one SQLite attempt may wait :data:`ATTEMPT_SECONDS`
        on a lock): gunicorn kills a worker 30 s after SIGTERM, and a worker killed while still
        trying lost everything it held. A store that fails at once (PostgreSQL stopped) is tried
        for the whole deadline (it used to be given up after about 5 of 15 s: no attempt started
        with less than :data:`ATTEMPT_SECONDS` left). What is left then, including a batch the
        writer thread is stuck writing, is spooled.
        """
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + self.close_deadline
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, min(timeout, deadline - time.monotonic())))
        delay = self.interval
        stuck: Optional[_Pending] = None
        longest = 0.0  # the longest attempt so far: the next may take as long
        while True:
            if not self._write_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                stuck = self._in_flight  # the writer thread never came back from the store
                break
            began = time.monotonic()
            try:
                if self._flush_locked() or not self._unreachable:
                    break
            finally:
                self._write_lock.release()
                longest = max(longest, time.monotonic() - began)
            left = deadline - time.monotonic()
            if left <= longest:
                break
            time.sleep(min(delay, left - longest))  # the last attempt still ends by the deadline
            delay = next_delay(delay, self.interval, True)
        with self._queue_lock:
            left_over, self._pending = self._pending, _Pending()
        if stuck is not None:
            left_over.take_back(list(stuck.checks), stuck.usage.items())
        if left_over:
            self._spool(left_over)

    def _spool(self, pending: _Pending) -> None:
        """Keep what the store could not take by the close deadline, on disk if there is a spool."""
        checks = len(pending.checks)
        if self.spool_dir is None:
            count_checks_lost("shutdown", checks)
            log.error("stopping with the store unreachable: %d checks and %d usage counts lost",
                      checks, len(pending.usage))
            return
        try:
            spooled = write_spool(self.spool_dir, pending.checks, pending.usage, self.store.minimised)
        except Exception as exc:  # noqa: BLE001 - nothing else can be done with them
            count_checks_lost("shutdown", checks)
            log.error("stopping with the store unreachable: %d checks lost (the spool could not be "
                      "written: %s)", checks, type(exc).__name__)
            return
        if spooled.error is not None:  # a full disk: the lines before it are kept
            count_checks_lost("shutdown", checks - spooled.checks)
            # strerror ("No space left on device") holds no request data; str() would add the path.
            log.error("stopping with the store unreachable: %d checks and %d usage counts lost, the spool "
                      "could not be written whole (%s: %s)", checks - spooled.checks,
                      len(pending.usage) - spooled.usage, type(spooled.error).__name__, spooled.error.strerror)
        if spooled.path is not None:
            log.error("stopping with the store unreachable: %d checks spooled to %s; the next worker to "
                      "start writes them", spooled.checks, spooled.path.name)

    def _take_spools(self) -> None:
        """Queue the checks that stopped workers spooled, ahead of new ones."""
        if self.spool_dir is None:
            return
        try:
            claimed = claim_spools(self.spool_dir)
        except OSError as exc:
            log.error("the check log's spool cannot be read (%s); left as it is", type(exc).__name__)
            return
        for path in claimed:
            try:
                checks, usage = read_spool(path)
            except OSError as exc:  # a directory or an unreadable file named like a spool
                log.error("spool file %s cannot be read (%s); renamed to %s", path.name,
                          type(exc).__name__, set_aside(path).name)
                continue
            with self._queue_lock:
                self._pending.take_back(checks, usage.items())
            path.unlink()
            log.warning("writing %d checks spooled by a worker that stopped while the store was "
                        "unreachable", len(checks))

    def _run(self) -> None:
        self.purge()
        delay = self.interval
        while not self._stopping:
            self._wake.wait(delay)
            self._wake.clear()
            if self._stopping:
                break
            try:
                self.flush()
                if self._last_purge is None or time.monotonic() - self._last_purge >= self.purge_every:
                    self.purge()
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any one failure
                log.error("recorder flush failed unexpectedly: %s", type(exc).__name__)
            delay = next_delay(delay, self.interval, self._unreachable)

    def _write_checks(self, items: Sequence[CheckRecord]) -> bool:
        """Write ``items`` ``batch_size`` at a time; put back what the store could not take.

        Each chunk is its own transaction, so that the backlog of an outage is written in
        short ones, not one that holds SQLite's write lock past the other workers' busy timeout.
        """
        listed = list(items)
        ok = True
        for start in range(0, len(listed), self.batch_size):
            written, unwritten = self._write_chunk(listed[start:start + self.batch_size])
            ok = ok and written
            if unwritten:  # the store failed as a whole: the rest waits, in order, for the next flush
                self._requeue(unwritten + listed[start + self.batch_size:])
                return False
        return ok

    def _write_chunk(self, items: list[CheckRecord]) -> tuple[bool, list[CheckRecord]]:
        """(whether every record was written, the records left unwritten because the store failed)."""
        try:
            self.store.record_checks(_paced(iter(items)))
            count_checks_written(len(items))
            return True, []
        except _DATA_ERRORS as exc:
            # The store refused what it was given, not the moment: a record it cannot take
            # would fail every retry and take the rest of its batch down with it. Write each
            # half on its own, down to the records at fault, and drop only those.
            if len(items) > 1:
                half = len(items) // 2
                first, left = self._write_chunk(items[:half])
                if left:
                    return False, left + items[half:]
                second, left = self._write_chunk(items[half:])
                return first and second, left
            log.error("a check could not be stored (%s); dropped", error_text(exc))
            self.dropped += 1
            count_checks_lost("refused")
            return False, []
        except Exception as exc:  # noqa: BLE001 - the store as a whole: put back by the caller
            self._failure = error_text(exc)
            return False, items

    def _requeue(self, items: list[CheckRecord]) -> None:
        """Put ``items`` back at the front of the queue, in order, for the next flush."""
        self._unreachable = True
        with self._queue_lock:
            self._pending.take_back(items)
            queued = len(self._pending.checks)
        log.error("writing %d checks failed (%s); kept for the next attempt (%d queued)",
                  len(items), self._failure, queued)

    def _write_usage(self, usage: dict[tuple[int, str, str], Counter[str]]) -> bool:
        ok = True
        slots = list(usage.items())
        for index, (slot, counter) in enumerate(slots):
            if not any(counter.values()):
                continue  # a slot whose increments were all zero
            key_id, month, blog = slot
            try:
                self.store.count_usage(key_id, month, blog=blog, **dict(counter))
            except _DATA_ERRORS as exc:
                ok = False
                log.error("counting usage failed (%s); increments for one key dropped", error_text(exc))
            except StoreCommitUnknownError as exc:
                # Most likely counted (the COMMIT was sent); counting again could count twice.
                ok = False
                self._unreachable = True
                self._failure = error_text(exc)
                log.error("counting usage: the connection broke during COMMIT; increments for one key "
                          "not counted again")
            except Exception as exc:  # noqa: BLE001 - the store as a whole: queued again
                self._unreachable = True
                self._failure = error_text(exc)
                log.error("counting usage failed (%s); kept for the next attempt", self._failure)
                # This slot and the rest wait for the next flush: each would wait out the same
                # outage (a SQLite lock: 10 s a slot), past gunicorn's graceful timeout.
                with self._queue_lock:
                    self._pending.take_back(usage=slots[index:])
                return False
        return ok


def _paced(records: Iterator[CheckRecord]) -> Iterator[CheckRecord]:
    """``records``, with the GIL given up every :data:`YIELD_EVERY` of them.

    Building a check's row (minimising, hashing, JSON) is pure Python and holds the GIL; a
    flush of a few hundred rows held it for milliseconds at a stretch, and the worker's
    request threads waited that long. In-process, two threads checking while the writer
    flushed: p99 6.6-7.0 ms, p99.9 10.6-14.2 ms writing straight through; 3.8-4.0 ms and
    6.3-7.1 ms pacing every 10 rows. SQLite's own calls give the GIL up too, but a
    transaction every 10 to 50 rows instead did not help (p99 5.2-6.6 ms).
    """
    for count, record in enumerate(records):
        if count and count % YIELD_EVERY == 0:
            time.sleep(0)  # gives the GIL up: a waiting request thread takes it
        yield record


def next_delay(delay: float, interval: float, store_unreachable: bool) -> float:
    """The writer's wait before its next flush: ``interval``, or twice the last wait (up to
    :data:`MAX_BACKOFF`) while the store cannot be reached, so that a database coming back is
    not met by every worker retrying five times a second. Records the store refused for their
    data are no reason to wait."""
    return min(max(delay, interval) * 2, MAX_BACKOFF) if store_unreachable else interval


_month_lock = threading.Lock()
_month: tuple[float, float, str] = (0.0, 0.0, "")


def _this_month() -> str:
    """:func:`store.current_month`, computed once per month rather than per call (it formats a date)."""
    global _month
    now = time.time()
    start, end, month = _month
    if start <= now < end:
        return month
    with _month_lock:
        month = current_month()
        year, number = (int(part) for part in month.split("-"))
        start = float(calendar.timegm((year, number, 1, 0, 0, 0)))
        end = float(calendar.timegm((year + number // 12, number % 12 + 1, 1, 0, 0, 0)))
        if not start <= now < end:  # the clock moved between the two reads: do not cache
            return month
        _month = (start, end, month)
        return month


__all__ = ["MAX_BACKOFF", "REQUEST_WAIT_SECONDS", "Recorder", "next_delay"]
