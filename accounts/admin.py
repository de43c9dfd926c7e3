from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import User


@admin.register(User)
class CityOpsUserAdmin(UserAdmin):
    list_display = ("username", "role", "place_code", "department_code", "is_active")
    list_filter = ("role", "is_active", "is_staff")
    fieldsets = (
        *(UserAdmin.fieldsets or ()),
        ("CityOps", {"fields": ("role", "place_code", "department_code", "phone")}),
    )
