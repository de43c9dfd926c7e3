"""Writing the audit trail: one entry per state change, in the change's own transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import GENESIS_HASH, HEAD_ID, AuditEntry, AuditHead, normalize_ip, normalize_json


def request_ip(request: Any) -> str | None:
    """The address an audited request came from, as the entry's `ip`: the peer of the
    connection (REMOTE_ADDR). Behind a reverse proxy that is the proxy's; the deployment's
    server then takes the client's from the proxy's X-Forwarded-For (cityops_serve
    --proxy-headers)."""
    return request.META.get("REMOTE_ADDR") or None


class AuditOutsideTransaction(RuntimeError):
    """audit_record was called outside transaction.atomic(): the entry could outlive a change
    that rolls back, or the change could commit without its entry."""


def audit_record(
    *,
    actor: Any,
    action: str,
    obj_type: str,
    obj_id: object,
    before: Any,
    after: Any,
    ip: str | None = None,
) -> AuditEntry:
    """Append one entry to the chain, inside the caller's transaction.atomic().

    `actor` is the user who acted, or None (or an anonymous user) for the system. `before` and
    `after` are JSON-able snapshots of what changed (None where there was nothing before).

    The chain's head row stays locked until the caller's transaction ends, so concurrent
    changes are audited one after another: call this last in the transaction, after the work
    that may fail, to hold the lock for as short a time as possible.
    """
    if not transaction.get_connection().in_atomic_block:
        raise AuditOutsideTransaction(
            f"audit_record({action!r}) must run inside the transaction.atomic() of the change"
        )
    user = actor if getattr(actor, "pk", None) is not None else None
    head = _lock_head()
    entry = AuditEntry(
        sequence=head.last_sequence + 1,
        occurred_at=timezone.now(),
        actor=user,
        actor_username=user.get_username() if user is not None else "",
        actor_role=getattr(user, "role", "") or "",
        action=action,
        object_type=obj_type,
        object_id=str(obj_id),
        before=normalize_json(before),
        after=normalize_json(after),
        ip=normalize_ip(ip),
        prev_hash=head.last_hash,
    )
    # Lengths and the IP are checked here, with the field named, not by the database (SQLite
    # would store an over-long value that PostgreSQL refuses). `before` and `after` are plain
    # JSON already (normalize_json encoded them): the JSON field's check would encode them once
    # more, and a bulk batch's entry holds some 10,000 values, inside the section every writer
    # waits for.
    entry.clean_fields(exclude={"actor", "hash", "before", "after"})
    entry.hash = entry.compute_hash(normalized=True)
    entry.save()
    AuditHead.objects.filter(pk=HEAD_ID).update(last_sequence=entry.sequence, last_hash=entry.hash)
    return entry


def _lock_head() -> AuditHead:
    """The head row, locked for the rest of the caller's transaction.

    PostgreSQL: SELECT … FOR UPDATE; a concurrent append waits here until this transaction
    commits or rolls back, then reads the head as it left it. SQLite: select_for_update is a
    no-op, and the database's single writer lock serialises the appends instead (a transaction
    that has read the head cannot commit a write while another writer holds the lock).
    """
    head = AuditHead.objects.select_for_update().filter(pk=HEAD_ID).first()
    if head is None:
        # First append (or a flushed test database): the head starts where the entries end.
        # Concurrent first appends race safely: INSERT … ON CONFLICT DO NOTHING (INSERT OR
        # IGNORE on SQLite) waits for the winner's transaction and then inserts nothing, and
        # the loser locks the row the winner left.
        last = AuditEntry.objects.order_by("-sequence").only("sequence", "hash").first()
        AuditHead.objects.bulk_create(
            [
                AuditHead(
                    id=HEAD_ID,
                    last_sequence=last.sequence if last is not None else 0,
                    last_hash=last.hash if last is not None else GENESIS_HASH,
                )
            ],
            ignore_conflicts=True,
        )
        head = AuditHead.objects.select_for_update().get(pk=HEAD_ID)
    return head
