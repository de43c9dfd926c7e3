"""What one socket has been sent, and how it catches up from the database with no gap and no
duplicate (the consumer's bookkeeping, kept apart from the socket so it can be tested alone).

A socket joins a few scopes. For each, `Cursor.delivered[scope]` is the highest sequence number
it has sent in that scope with every number below it sent too. An event carries one number per
scope it was published to (`seqs`); of those, a socket looks only at the scopes it joined:

* every one at or below `delivered` → a duplicate (it came through another group, or both live
  and in a replay): dropped;
* every one at most `delivered + 1`, at least one exactly → the next event: sent, and the
  cursor advances;
* any one beyond `delivered + 1` → something before it is missing (a live message lost while
  Redis was down, an event whose after-commit send failed and that the relay sends later):
  the socket catches up from the database, where the missing numbers are already committed
  (`realtime.outbox`: numbers commit in order).

`catch_up` reads every joined scope after its cursor and emits the events in an order that keeps
every scope's numbers consecutive. Such an order exists because events that share a scope were
committed one after the other (the scope's counter is locked until commit), so commit order is
one order consistent with every scope's numbering.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from realtime.outbox import REPLAY_LIMIT_MAX, events_after
from realtime.outbox import scope_bounds as outbox_scope_bounds

Verdict = Literal["next", "duplicate", "gap", "foreign"]


def visible_seqs(seqs: dict[str, int], joined: Iterable[str]) -> dict[str, int]:
    """An event's numbers in the scopes a socket joined: all a client is shown (another user's
    or department's counters are none of its business)."""
    return {scope: seqs[scope] for scope in joined if scope in seqs}


@dataclass
class Cursor:
    delivered: dict[str, int]

    def verdict(self, seqs: dict[str, int]) -> Verdict:
        mine = visible_seqs(seqs, self.delivered)
        if not mine:
            return "foreign"
        if any(seq > self.delivered[scope] + 1 for scope, seq in mine.items()):
            return "gap"
        if all(seq <= self.delivered[scope] for scope, seq in mine.items()):
            return "duplicate"
        return "next"

    def advance(self, seqs: dict[str, int]) -> None:
        for scope, seq in visible_seqs(seqs, self.delivered).items():
            if seq > self.delivered[scope]:
                self.delivered[scope] = seq


@dataclass
class CatchUp:
    events: list[dict[str, Any]] = field(default_factory=list)
    # Scopes whose gap was larger than the replay limit: the client reloads its snapshot.
    too_far: dict[str, str] = field(default_factory=dict)  # scope → "gap_too_large"|"pruned"
    latest: dict[str, int] = field(default_factory=dict)


def catch_up(cursor: Cursor, *, limit: int) -> CatchUp:
    """Read from the database every event after the cursor in each joined scope, in an order
    that keeps each scope's numbers consecutive, and advance the cursor over them.

    A scope more than `limit` events behind, or behind what the retention deleted
    (realtime.retention), is not replayed: its cursor jumps to the latest number and the scope
    is listed in `too_far` with the reason (the client reloads its snapshot, then asks for what
    came after it). Runs in a database thread (sync).
    """
    bounds = scope_bounds(cursor.delivered)
    result = CatchUp(latest={scope: latest for scope, (latest, _) in bounds.items()})
    for scope, (latest, pruned_through) in bounds.items():
        delivered = cursor.delivered[scope]
        if latest - delivered > limit:
            result.too_far[scope] = "gap_too_large"
        elif delivered < pruned_through:  # some of them deleted by the retention
            result.too_far[scope] = "pruned"
        else:
            continue
        cursor.delivered[scope] = latest
    page = max(1, min(limit, REPLAY_LIMIT_MAX))
    pending: dict[int, dict[str, Any]] = {}
    while True:
        fetched = 0
        for scope, delivered in cursor.delivered.items():
            # Read a scope (again) unless its next event is already at hand.
            if any(message["seqs"].get(scope) == delivered + 1 for message in pending.values()):
                continue
            for message in events_after(scope, delivered, page):
                if message["id"] not in pending:
                    pending[message["id"]] = message
                    fetched += 1
        emitted = _emit_in_order(cursor, pending, result.events)
        if not fetched and not emitted:
            break
    return result


def _emit_in_order(
    cursor: Cursor, pending: dict[int, dict[str, Any]], out: list[dict[str, Any]]
) -> int:
    """Move every pending event that is next in all its joined scopes to `out`, repeatedly;
    drop duplicates; leave those still waiting for an earlier number. Returns how many moved."""
    queues: dict[str, deque[dict[str, Any]]] = {}
    for scope in cursor.delivered:
        waiting = sorted(
            (m["seqs"][scope], m["id"]) for m in pending.values() if scope in m["seqs"]
        )
        queues[scope] = deque(pending[event_id] for _, event_id in waiting)
    moved = 0
    progress = True
    while progress:
        progress = False
        for queue in queues.values():
            while queue:
                head = queue[0]
                if head["id"] not in pending:  # emitted or dropped through another scope
                    queue.popleft()
                    continue
                verdict = cursor.verdict(head["seqs"])
                if verdict == "gap":
                    break
                queue.popleft()
                del pending[head["id"]]
                if verdict == "next":
                    cursor.advance(head["seqs"])
                    out.append(head)
                    moved += 1
                progress = True
    return moved


# --- latest numbers, shared by the sockets of a process ---------------------------------------

# Heartbeats of many sockets ask for the same scopes' latest numbers; one query per scope per
# second and process answers them all.
LATEST_TTL_SECONDS = 1.0
_latest: dict[str, tuple[int, float]] = {}
_latest_lock = threading.Lock()


def scope_bounds(scopes: Iterable[str]) -> dict[str, tuple[int, int]]:
    """(latest number, pruned through) of each scope, read now (realtime.outbox.scope_bounds);
    refreshes the cache of latest numbers."""
    bounds = outbox_scope_bounds(scopes)
    now = time.monotonic()
    with _latest_lock:
        for scope, (latest, _) in bounds.items():
            _latest[scope] = (latest, now)
    return bounds


def _cached(scopes: list[str]) -> dict[str, int]:
    """The cached latest numbers of those `scopes` read less than LATEST_TTL_SECONDS ago."""
    now = time.monotonic()
    with _latest_lock:
        return {
            scope: _latest[scope][0]
            for scope in scopes
            if scope in _latest and now - _latest[scope][1] < LATEST_TTL_SECONDS
        }


def cached_latest_seqs(scopes: Iterable[str]) -> dict[str, int] | None:
    """latest_seqs(scopes) if every scope's number is at hand and at most a second old, else
    None: lets a socket's heartbeat skip the hop to the database thread (one thread serves
    every socket of the process)."""
    wanted = list(scopes)
    known = _cached(wanted)
    return known if len(known) == len(wanted) else None


def latest_seqs(scopes: Iterable[str], *, fresh: bool = False) -> dict[str, int]:
    """The last number given out in each scope (0 if none), at most a second old unless
    `fresh`."""
    wanted = list(scopes)
    known = {} if fresh else _cached(wanted)
    missing = [scope for scope in wanted if scope not in known]
    if missing:
        known.update({scope: latest for scope, (latest, _) in scope_bounds(missing).items()})
    return {scope: known[scope] for scope in wanted}
