from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class AccountsConfig(AppConfig):
    """People who sign in: the user model with a role and a place in the 1+6+N hierarchy, which
    every page, list, export and socket uses to decide what that person may see."""

    name = "accounts"
    verbose_name = pgettext_lazy("app", "用户")

    def ready(self) -> None:
        # Registers the API-key scheme with drf-spectacular (extensions register on import).
        from accounts import (
            schema,  # noqa: F401
            signin,
        )

        signin.connect()
