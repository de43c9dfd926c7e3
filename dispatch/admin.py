from typing import Any

from django.contrib import admin

from .models import ResponderPosition


@admin.register(ResponderPosition)
class ResponderPositionAdmin(admin.ModelAdmin):
    """View only: positions are written and removed by the phone through dispatch.services
    (with their audit entry and live event), never edited here."""

    list_display = ("user", "grid_code", "grid_name", "street_name", "accuracy_m", "received_at")
    list_filter = ("street_code",)
    search_fields = ("user__username", "grid_code", "grid_name")
    ordering = ("-received_at",)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
