"""The audit trail (审计日志): who changed what, when, from where, and what it was before and after.

Every state-changing service writes one `AuditEntry` in the same transaction as the change
(`audit.services.audit_record`), so a committed change always has its entry and a rolled-back
change never has one. Entries are append-only: the model, its queryset and the admin refuse to
update or delete them.

Each entry stores the SHA-256 of its own content together with the hash of the entry before it
(`prev_hash`), so the entries form one chain from the first (whose `prev_hash` is
`GENESIS_HASH`) to the last, which `AuditHead` remembers. Changing, inserting or removing a row
by any route that bypasses the ORM (raw SQL, a restored backup) breaks the chain at that row, and
`manage.py audit_verify` names the first broken entry. The chain *detects* tampering; keeping
people from tampering is the job of database grants (the application's role needs only INSERT
and SELECT on the entries).

The hash covers a canonical JSON of the content (sorted keys, no spaces, times as ISO 8601 in
UTC, JSON values normalised as they read back from either database), so an entry hashes the same
on SpatiaLite and PostGIS and after a dump and restore.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from datetime import UTC
from typing import Any, NoReturn

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

# prev_hash of the first entry: the chain starts from nothing.
GENESIS_HASH = "0" * 64
# The primary key of the one AuditHead row.
HEAD_ID = 1


class AuditEntryImmutable(Exception):
    """An attempt to change or delete an audit entry through the ORM."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"audit entries are append-only: {operation} is refused; "
            "record a new entry with audit.services.audit_record"
        )


def normalize_json(value: Any) -> Any:
    """`value` as plain JSON types, exactly as it will read back from SQLite or PostgreSQL.

    Dates, decimals and UUIDs become strings (DjangoJSONEncoder); NaN and infinities are refused;
    integral floats become integers, because PostgreSQL's jsonb prints 1e20 as
    100000000000000000000, which reads back as an int.
    """
    text = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, allow_nan=False)
    # Converted as the parser meets each number with a fraction or exponent, not by walking the
    # decoded value again (a bulk batch's entry holds some 10,000 values).
    return json.loads(text, parse_float=_float_or_int)


def _float_or_int(text: str) -> float | int:
    number = float(text)
    return int(number) if number.is_integer() else number


def normalize_ip(ip: str | None) -> str | None:
    """One spelling per address (PostgreSQL's inet and Django print some IPv6 forms differently)."""
    return str(ipaddress.ip_address(ip)) if ip else None


def canonical_json(content: dict[str, Any]) -> bytes:
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    """Reads only: bulk writes would bypass the chain."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditEntryImmutable("update()")

    def delete(self) -> NoReturn:
        raise AuditEntryImmutable("delete()")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditEntryImmutable("bulk_update()")

    def bulk_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditEntryImmutable("bulk_create()")


class AuditEntry(models.Model):
    """One audited change: an actor (or the system) did `action` to an object.

    `actor_username` and `actor_role` are snapshots taken when the entry is written, so the trail
    still says who acted, and in which role, after the user is renamed or changes role. The actor
    foreign key protects the user from deletion (users are deactivated, not deleted).
    """

    # Strictly increasing and gapless: assigned under the AuditHead lock, rolled back with it.
    sequence = models.BigIntegerField(_("序号"), primary_key=True)
    # The application server's clock (timezone.now()), taken while the chain is locked.
    occurred_at = models.DateTimeField(_("时间"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("操作人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    actor_username = models.CharField(_("操作人用户名"), max_length=150, blank=True)
    actor_role = models.CharField(_("操作人角色"), max_length=32, blank=True)
    # "<app>.<service>", e.g. "gridmap.generation_activate".
    action = models.CharField(_("操作"), max_length=100)
    # "<app>.<model>", e.g. "gridmap.generation", and that object's primary key as text.
    object_type = models.CharField(_("对象类型"), max_length=100)
    object_id = models.CharField(_("对象标识"), max_length=100)
    before = models.JSONField(_("变更前"), null=True, blank=True)
    after = models.JSONField(_("变更后"), null=True, blank=True)
    ip = models.GenericIPAddressField(_("IP 地址"), null=True, blank=True)
    # Two entries can never chain to the same predecessor: a fork is refused by the database.
    prev_hash = models.CharField(_("前一条哈希"), max_length=64, unique=True)
    hash = models.CharField(_("哈希"), max_length=64)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = pgettext_lazy("model", "审计记录")
        verbose_name_plural = pgettext_lazy("models", "审计记录")
        ordering = ["-sequence"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_entry_object"),
            models.Index(fields=["action"], name="audit_entry_action"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields"):
            raise AuditEntryImmutable("save() of an existing entry")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditEntryImmutable("delete()")

    def content(self, *, normalized: bool = False) -> dict[str, Any]:
        """What the hash covers: every field but the hash itself, in canonical form.
        `normalized`: `before` and `after` are already what normalize_json makes of them (the
        entry audit_record is writing), so they are not converted a second time."""
        return {
            "sequence": self.sequence,
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor_id": self.actor_id,
            "actor_username": self.actor_username,
            "actor_role": self.actor_role,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "before": self.before if normalized else normalize_json(self.before),
            "after": self.after if normalized else normalize_json(self.after),
            "ip": normalize_ip(self.ip),
            "prev_hash": self.prev_hash,
        }

    def compute_hash(self, *, normalized: bool = False) -> str:
        return hashlib.sha256(canonical_json(self.content(normalized=normalized))).hexdigest()


class AuditHead(models.Model):
    """The end of the chain: the last entry's sequence and hash, in one row (id 1).

    Every append locks this row (SELECT … FOR UPDATE on PostgreSQL; SQLite's single writer lock
    does the same) until its transaction ends, so appends are serialised and no two entries can
    chain to the same predecessor. It also lets `audit_verify` notice entries removed from the
    end of the chain.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=HEAD_ID)
    last_sequence = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        verbose_name = pgettext_lazy("model", "审计链头")
        verbose_name_plural = pgettext_lazy("models", "审计链头")
        constraints = [
            models.CheckConstraint(condition=Q(id=HEAD_ID), name="audit_head_single_row"),
        ]

    def __str__(self) -> str:
        return f"#{self.last_sequence} {self.last_hash[:12]}"
