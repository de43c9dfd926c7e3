"""The outbox: events written in the same transaction as the change they announce.

A service that changes state calls `realtime.outbox.publish` inside its transaction. That writes
an `OutboxEvent` (type and payload) and, for every scope that may see it, an
`OutboxEventScope` row carrying that scope's next sequence number. A scope is who may see an
event: "district:440309", "street:440309001", "community:440309001001", "department:CGJ",
"user:42". The database is the record; what is sent through the channel layer after commit is a
notification that a screen can check against its last sequence number per scope.

Sequence numbers are gapless per scope and committed in order: `ScopeSequence` holds each
scope's counter, which is locked from the moment an event takes a number until its transaction
ends. So a screen that sees number N+2 but not N+1 knows it missed something, and N+1 is already
in the database for it to fetch (`realtime.outbox.events_after`).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

# Longest scope string; its channel-layer group name ("scope." + kind + "." + id) stays < 100.
SCOPE_MAX_LENGTH = 80


class OutboxEvent(models.Model):
    """One event. `published_at` is set once it has been handed to the channel layer; an event
    still unpublished a few seconds after it was written is sent again by the relay
    (`realtime.relay`, `manage.py realtime_relay`)."""

    # "<app>.<what happened>", e.g. "gridmap.generation_activated"; see docs/realtime.md.
    type = models.CharField(_("事件类型"), max_length=100)
    # Plain JSON, serialized once when published: what is stored is exactly what is sent.
    payload = models.JSONField(_("内容"), default=dict)
    created_at = models.DateTimeField(_("写入时间"), default=timezone.now)
    published_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    # How many times sending was tried (the on-commit hook, then the relay).
    attempts = models.PositiveIntegerField(_("发送次数"), default=0)
    # A relay that claimed the event for sending holds it until then; another relay takes it
    # over only after that (a relay that died mid-send leaves it to the others).
    claimed_until = models.DateTimeField(_("认领至"), null=True, blank=True)
    # The relay's last failure to send, for the operator ("" when none).
    last_error = models.TextField(_("最近发送错误"), blank=True, default="")

    class Meta:
        verbose_name = pgettext_lazy("model", "待发事件")
        verbose_name_plural = pgettext_lazy("models", "待发事件")
        indexes = [
            # The relay's question: which events are still unsent?
            models.Index(
                fields=["created_at"],
                condition=Q(published_at__isnull=True),
                name="realtime_outbox_unpublished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"


class OutboxEventScope(models.Model):
    """An event as seen by one scope, with that scope's sequence number."""

    # No foreign-key constraint in the database (ADR 0014): only realtime.outbox writes these
    # rows, in the statement batch that writes their event, and the retention deletes them
    # before it; PostgreSQL would check each row against its event at commit, 5,000 look-ups
    # per bulk batch inside the section every writer waits for. Indexed by the (event, scope)
    # unique constraint, which a lookup by event reads; an index of its own as well cost
    # ≈7 ms per 5,000 rows written.
    event = models.ForeignKey(
        OutboxEvent,
        on_delete=models.CASCADE,
        related_name="scopes",
        db_constraint=False,
        db_index=False,
    )
    scope = models.CharField(_("范围"), max_length=SCOPE_MAX_LENGTH)
    seq = models.PositiveBigIntegerField(_("序号"))

    class Meta:
        verbose_name = pgettext_lazy("model", "事件范围")
        verbose_name_plural = pgettext_lazy("models", "事件范围")
        constraints = [
            # Also the index replay reads: WHERE scope = … AND seq > … ORDER BY seq.
            models.UniqueConstraint(fields=["scope", "seq"], name="realtime_scope_seq_unique"),
            models.UniqueConstraint(fields=["event", "scope"], name="realtime_event_scope_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} #{self.seq}"


class ScopeSequence(models.Model):
    """The last sequence number given out in one scope; locked while a transaction uses it."""

    scope = models.CharField(_("范围"), max_length=SCOPE_MAX_LENGTH, primary_key=True)
    last_seq = models.PositiveBigIntegerField(_("最新序号"), default=0)
    # Every event of the scope numbered up to this one has been deleted by the retention
    # (realtime.retention): a replay that needs one of them cannot be served, and the client
    # reloads its snapshot instead.
    pruned_through = models.PositiveBigIntegerField(_("已清理至序号"), default=0)

    class Meta:
        verbose_name = pgettext_lazy("model", "范围序号")
        verbose_name_plural = pgettext_lazy("models", "范围序号")

    def __str__(self) -> str:
        return f"{self.scope} #{self.last_seq}"
