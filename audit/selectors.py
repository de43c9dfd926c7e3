"""Reading the audit trail: verifying the hash chain."""

from __future__ import annotations

from dataclasses import dataclass

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
        if entry.prev_hash != prev_hash:
            return broken(
                entry.sequence,
                f"prev_hash {entry.prev_hash[:16]}… is not the hash of the entry before it "
                f"({prev_hash[:16]}…): that entry's hash was rewritten or an entry was "
                "removed or inserted",
            )
        recomputed = entry.compute_hash()
        if recomputed != entry.hash:
            return broken(
                entry.sequence,
                f"content does not match the stored hash (stored {entry.hash[:16]}…, "
                f"recomputed {recomputed[:16]}…): a field was changed after it was written",
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
