"""The audit trail: entries chain by hash, verify, refuse changes, and name the first break.

Tampering is done the way an intruder or a careless fix would do it, with raw SQL through
connection.cursor(), which the ORM's refusals cannot stop; audit_verify must notice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from accounts.models import Role, User
from audit.models import GENESIS_HASH, AuditEntry, AuditEntryImmutable, AuditHead
from audit.selectors import chain_verify
from audit.services import AuditOutsideTransaction, audit_record
from tests.threads import require_concurrent_writers, run_in_threads

ENTRIES = "/admin/audit/auditentry/"


def record(count: int = 1, *, actor: object = None, ip: str | None = None) -> list[AuditEntry]:
    with transaction.atomic():
        return [
            audit_record(
                actor=actor,
                action="tests.thing_change",
                obj_type="tests.thing",
                obj_id=n,
                before={"n": n},
                after={"n": n + 1},
                ip=ip,
            )
            for n in range(count)
        ]


def verify() -> str:
    out = StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def tamper(sql: str, params: list[object]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def broken_message() -> str:
    with pytest.raises(CommandError) as raised:
        verify()
    return str(raised.value)


# --- the chain ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_entries_link_to_the_previous_entry_and_the_chain_verifies():
    first, second, third = record(3)

    assert [second.sequence, third.sequence] == [first.sequence + 1, first.sequence + 2]
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert len({first.hash, second.hash, third.hash}) == 3
    head = AuditHead.objects.get()
    assert (head.last_sequence, head.last_hash) == (third.sequence, third.hash)
    total = AuditEntry.objects.count()
    assert f"OK: {total} audit entries, chain intact (last entry {third.sequence}" in verify()


@pytest.mark.django_db
def test_the_first_entry_chains_to_the_genesis_hash():
    first = AuditEntry.objects.order_by("sequence").first() or record(1)[0]

    assert first.sequence == 1
    assert first.prev_hash == GENESIS_HASH


@pytest.mark.django_db
def test_the_actor_and_role_are_snapshots_and_the_ip_is_kept():
    user = User.objects.create_user(
        "street-op", role=Role.STREET_OPERATOR, place_code="440309001", password="x" * 12
    )
    (entry,) = record(actor=user, ip="10.20.30.40")
    user.username, user.role = "renamed", Role.AUDITOR
    user.save()

    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.actor_id == user.pk
    assert (stored.actor_username, stored.actor_role) == ("street-op", "street_operator")
    assert stored.ip == "10.20.30.40"
    assert chain_verify().ok


@pytest.mark.django_db
def test_a_missing_or_anonymous_actor_is_the_system():
    system, anonymous = record(actor=None)[0], record(actor=AnonymousUser())[0]

    for entry in (system, anonymous):
        stored = AuditEntry.objects.get(pk=entry.pk)
        assert stored.actor_id is None and stored.actor_username == stored.actor_role == ""


@pytest.mark.django_db
def test_values_hash_the_same_after_the_round_trip_through_the_database():
    awkward = {
        "when": datetime(2025, 10, 1, 8, 30, tzinfo=UTC),
        "amount": Decimal("12.50"),
        "huge": 1e20,  # jsonb prints it back as an integer
        "whole": 3.0,
        "ratio": 0.1,
        "tiny": 1.5e-7,
        "name": "龙华区 观湖街道",
        "nested": [{"b": 1, "a": None, "c": [True, False]}],
        7: "an integer key",
    }
    entries = []
    for ip in ("2001:DB8:0:0::1", "::ffff:10.0.0.1", "192.168.1.9"):
        with transaction.atomic():
            entries.append(
                audit_record(
                    actor=None,
                    action="tests.thing_change",
                    obj_type="tests.thing",
                    obj_id="α-1",
                    before=awkward,
                    after=None,
                    ip=ip,
                )
            )

    for entry in entries:
        stored = AuditEntry.objects.get(pk=entry.pk)
        assert stored.compute_hash() == stored.hash == entry.hash
    assert stored.before["huge"] == 10**20 and stored.before["7"] == "an integer key"
    assert chain_verify().ok


@pytest.mark.django_db
def test_bad_values_are_refused_before_anything_is_written():
    def state() -> tuple[int, list[tuple[int, str]]]:
        return AuditEntry.objects.count(), list(
            AuditHead.objects.values_list("last_sequence", "last_hash")
        )

    before = state()
    with pytest.raises(ValidationError) as raised, transaction.atomic():
        audit_record(
            actor=None,
            action="tests.thing_change",
            obj_type="tests.thing",
            obj_id="x" * 101,
            before=None,
            after={},
        )
    assert "object_id" in raised.value.message_dict
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        record(ip="not-an-address")
    with (
        pytest.raises(ValueError, match="Out of range float values are not JSON compliant"),
        transaction.atomic(),
    ):
        audit_record(
            actor=None, action="a.b", obj_type="t", obj_id=1, before=None, after=float("nan")
        )
    assert state() == before


@pytest.mark.django_db
def test_a_rolled_back_change_leaves_no_entry_and_its_sequence_is_reused():
    (before,) = record()
    count = AuditEntry.objects.count()

    with pytest.raises(RuntimeError, match="the change failed"), transaction.atomic():
        audit_record(
            actor=None,
            action="tests.thing_change",
            obj_type="tests.thing",
            obj_id=1,
            before=None,
            after={"n": 1},
        )
        raise RuntimeError("the change failed")

    assert AuditEntry.objects.count() == count
    assert AuditHead.objects.get().last_sequence == before.sequence
    (after,) = record()
    assert after.sequence == before.sequence + 1 and after.prev_hash == before.hash


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_refused():
    count = AuditEntry.objects.count()
    with pytest.raises(AuditOutsideTransaction, match=r"inside the transaction\.atomic"):
        audit_record(
            actor=None,
            action="tests.thing_change",
            obj_type="tests.thing",
            obj_id=1,
            before=None,
            after=None,
        )
    assert AuditEntry.objects.count() == count


# --- append-only -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_orm_refuses_to_change_or_delete_entries():
    (entry,) = record()
    rows = AuditEntry.objects.filter(pk=entry.pk)

    entry.action = "tests.rewritten"
    with pytest.raises(AuditEntryImmutable, match="append-only"):
        entry.save()
    with pytest.raises(AuditEntryImmutable):
        entry.save(update_fields=["action"])
    with pytest.raises(AuditEntryImmutable):
        entry.delete()
    with pytest.raises(AuditEntryImmutable):
        rows.update(action="tests.rewritten")
    with pytest.raises(AuditEntryImmutable):
        rows.delete()
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.all().delete()
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.bulk_update([entry], ["action"])
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.bulk_create([AuditEntry(sequence=10**9, prev_hash="f" * 64)])

    assert rows.get().action == "tests.thing_change"
    assert chain_verify().ok


@pytest.mark.django_db
def test_the_admin_shows_entries_read_only(admin_client):
    (entry,) = record()

    assert admin_client.get(ENTRIES).status_code == 200
    page = admin_client.get(f"{ENTRIES}{entry.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.get(f"{ENTRIES}add/").status_code == 403
    assert admin_client.get(f"{ENTRIES}{entry.pk}/delete/").status_code == 403
    assert admin_client.post(f"{ENTRIES}{entry.pk}/change/", {"action": "x"}).status_code == 403
    assert AuditEntry.objects.get(pk=entry.pk).action == "tests.thing_change"


# --- tampering ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_field_changed_with_raw_sql_is_detected_and_the_entry_named():
    _, target, _ = record(3)

    tamper(
        "UPDATE audit_auditentry SET object_id = %s WHERE sequence = %s",
        ["999", target.sequence],
    )

    message = broken_message()
    assert message.startswith(f"BROKEN at entry {target.sequence}: content does not match")
    assert f"{target.sequence - 1} entries before it verify" in message


@pytest.mark.django_db
def test_only_the_first_of_several_broken_entries_is_named():
    _, first_target, _, second_target = record(4)

    tamper(
        "UPDATE audit_auditentry SET actor_username = %s WHERE sequence = %s",
        ["someone-else", second_target.sequence],
    )
    tamper(
        "UPDATE audit_auditentry SET after = %s WHERE sequence = %s",
        ['{"n": 1000}', first_target.sequence],
    )

    assert broken_message().startswith(f"BROKEN at entry {first_target.sequence}: content")
    report = chain_verify()
    assert report.broken is not None and report.broken.sequence == first_target.sequence
    assert report.verified == first_target.sequence - 1


@pytest.mark.django_db
def test_a_rewritten_hash_breaks_the_link_to_the_next_entry():
    _, target, following = record(3)
    # A careful intruder changes a row and recomputes its own hash: the next link still breaks.
    tamper(
        "UPDATE audit_auditentry SET object_id = %s WHERE sequence = %s",
        ["999", target.sequence],
    )
    rewritten = AuditEntry.objects.get(pk=target.pk).compute_hash()
    tamper(
        "UPDATE audit_auditentry SET hash = %s WHERE sequence = %s", [rewritten, target.sequence]
    )

    message = broken_message()
    assert message.startswith(f"BROKEN at entry {following.sequence}: prev_hash")
    assert "is not the hash of the entry before it" in message


@pytest.mark.django_db
def test_a_removed_entry_is_named_by_the_gap_it_leaves():
    _, removed, following = record(3)

    tamper("DELETE FROM audit_auditentry WHERE sequence = %s", [removed.sequence])

    message = broken_message()
    assert message.startswith(
        f"BROKEN at entry {following.sequence}: sequence {following.sequence} follows "
        f"{removed.sequence - 1}: entry {removed.sequence} is missing"
    )


@pytest.mark.django_db
def test_entries_removed_from_the_end_are_noticed_through_the_head():
    *_, last = record(3)

    tamper("DELETE FROM audit_auditentry WHERE sequence = %s", [last.sequence])

    message = broken_message()
    assert message.startswith(f"BROKEN at entry {last.sequence}: missing")
    assert f"head records entry {last.sequence}" in message


# --- concurrency -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_from_threads_keep_one_gapless_valid_chain():
    require_concurrent_writers()
    threads, per_thread = 8, 25
    existing = AuditEntry.objects.count()

    def append(worker: int) -> None:
        for n in range(per_thread):
            with transaction.atomic():
                audit_record(
                    actor=None,
                    action="tests.thing_change",
                    obj_type="tests.thing",
                    obj_id=f"{worker}-{n}",
                    before=None,
                    after={"worker": worker, "n": n},
                )

    run_in_threads(append, threads)

    total = existing + threads * per_thread
    sequences = list(AuditEntry.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, total + 1))
    assert AuditEntry.objects.values("prev_hash").distinct().count() == total
    report = chain_verify()
    assert report.ok and report.verified == total
    assert f"OK: {total} audit entries" in verify()
