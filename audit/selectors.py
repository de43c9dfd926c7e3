"""Reading the audit trail: listing entries, verifying the hash chain (all of it, or the entries
one page shows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from audit.models import GENESIS_HASH, HEAD_ID, AuditEntry, AuditHead


@dataclass(frozen=True)
class ChainBreak:
    # The first entry that does not verify; None when the break is after the last entry.
    sequence: int | None
    reason: str


@dataclass(frozen=True)
class ChainReport:
    verified: int  # entries verified before the break (all of them when the chain is intact)
    last_sequence: int
    last_hash: str
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


# Why an entry does not verify (EntryBreak.problem, entry_problem).
CONTENT_CHANGED = "content_changed"  # its content does not hash to its stored hash
LINK_BROKEN = "link_broken"  # its prev_hash is not the stored hash of the entry before it
PREDECESSOR_MISSING = "predecessor_missing"  # there is no entry with the sequence before it


def entry_problem(entry: AuditEntry, previous_hash: str) -> str:
    """What is wrong with one entry that should follow an entry whose hash is `previous_hash`:
    LINK_BROKEN, CONTENT_CHANGED, or "" when it verifies. The one rule of both checks, the
    whole chain's (chain_verify) and a page's (entries_check)."""
    if entry.prev_hash != previous_hash:
        return LINK_BROKEN
    if entry.compute_hash() != entry.hash:
        return CONTENT_CHANGED
    return ""


def chain_verify(*, chunk_size: int = 2000) -> ChainReport:
    """Walk the chain from the first entry, recompute every hash, and stop at the first break.

    An entry is broken when its sequence does not follow the previous one (entries removed),
    when its prev_hash is not the previous entry's hash (an entry removed, inserted or its hash
    rewritten), or when its content does not hash to its stored hash (a field changed). Finally
    the head must name the last entry, or entries were removed from the end.
    """
    verified = 0
    expected_sequence = 1
    prev_hash = GENESIS_HASH

    def broken(sequence: int | None, reason: str) -> ChainReport:
        return ChainReport(verified, expected_sequence - 1, prev_hash, ChainBreak(sequence, reason))

    for entry in AuditEntry.objects.order_by("sequence").iterator(chunk_size=chunk_size):
        if entry.sequence != expected_sequence:
            missing = (
                f"{expected_sequence}"
                if entry.sequence == expected_sequence + 1
                else f"{expected_sequence}–{entry.sequence - 1}"
            )
            return broken(
                entry.sequence,
                f"sequence {entry.sequence} follows {expected_sequence - 1}: "
                f"entry {missing} is missing",
            )
        problem = entry_problem(entry, prev_hash)
        if problem == LINK_BROKEN:
            return broken(
                entry.sequence,
                f"prev_hash {entry.prev_hash[:16]}… is not the hash of the entry before it "
                f"({prev_hash[:16]}…): that entry's hash was rewritten or an entry was "
                "removed or inserted",
            )
        if problem == CONTENT_CHANGED:
            return broken(
                entry.sequence,
                f"content does not match the stored hash (stored {entry.hash[:16]}…, "
                f"recomputed {entry.compute_hash()[:16]}…): a field was changed after it was "
                "written",
            )
        verified += 1
        expected_sequence += 1
        prev_hash = entry.hash

    head = AuditHead.objects.filter(pk=HEAD_ID).first()
    last_sequence = expected_sequence - 1
    if head is None:
        if verified:
            return broken(None, "the chain head (audit_audithead) is missing")
    elif head.last_sequence > last_sequence:
        return broken(
            last_sequence + 1,
            f"missing: the chain ends at entry {last_sequence} but the head records entry "
            f"{head.last_sequence}, so entries were removed from the end",
        )
    elif head.last_sequence != last_sequence or head.last_hash != prev_hash:
        return broken(
            None,
            f"the head records entry {head.last_sequence} ({head.last_hash[:16]}…) but the "
            f"chain ends at entry {last_sequence} ({prev_hash[:16]}…): the head was changed",
        )
    return ChainReport(verified, last_sequence, prev_hash, None)


# --- a page of entries (command.views.audit) -----------------------------------------------------


def audit_entries(
    *,
    since: datetime | None = None,
    before: datetime | None = None,
    actor_username: str = "",
    action: str = "",
    object_type: str = "",
    object_id: str = "",
) -> QuerySet[AuditEntry]:
    """Entries newest first, with their actors, narrowed by whichever arguments are given:
    written at or after `since` and before `before`, by the user then called `actor_username`
    (the name the entry recorded, any case), with `action`, about `object_type`/`object_id`."""
    entries = AuditEntry.objects.select_related("actor").order_by("-sequence")
    if since is not None:
        entries = entries.filter(occurred_at__gte=since)
    if before is not None:
        entries = entries.filter(occurred_at__lt=before)
    if actor_username:
        entries = entries.filter(actor_username__iexact=actor_username)
    if action:
        entries = entries.filter(action=action)
    if object_type:
        entries = entries.filter(object_type=object_type)
    if object_id:
        entries = entries.filter(object_id=object_id)
    return entries


@dataclass(frozen=True)
class EntryBreak:
    sequence: int
    problem: str  # CONTENT_CHANGED, LINK_BROKEN or PREDECESSOR_MISSING
    predecessor: int  # the sequence of the entry it should follow (0: the chain's start)


def entries_check(entries: Sequence[AuditEntry]) -> dict[int, EntryBreak]:
    """The entries of `entries` that do not verify, by sequence: each entry's content must hash
    to its stored hash, and its prev_hash must be the stored hash of the entry whose sequence is
    one less (GENESIS_HASH for the first entry), as `chain_verify` checks the whole chain.

    `entries` need not be consecutive (a filtered page): the predecessors not among them are
    read in one query, whatever their number. What this cannot see: entries removed from the
    end of the chain, and a chain rewritten from some entry onwards together with every later
    hash (chain_verify compares the end with AuditHead; a copy of the head kept outside the
    database shows the rest).
    """
    hashes = {entry.sequence: entry.hash for entry in entries}
    wanted = {entry.sequence - 1 for entry in entries if entry.sequence > 1} - hashes.keys()
    if wanted:
        hashes.update(
            AuditEntry.objects.filter(sequence__in=wanted)
            .order_by()
            .values_list("sequence", "hash")
        )
    breaks: dict[int, EntryBreak] = {}
    for entry in entries:
        predecessor = entry.sequence - 1
        expected = GENESIS_HASH if predecessor == 0 else hashes.get(predecessor)
        problem = PREDECESSOR_MISSING if expected is None else entry_problem(entry, expected)
        if problem:
            breaks[entry.sequence] = EntryBreak(entry.sequence, problem, predecessor)
    return breaks
