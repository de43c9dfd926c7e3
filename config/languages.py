"""Which spelling of a shipped name the reader gets (docs/decisions/0016).

The pages speak Simplified Chinese first, with English one click away (docs/architecture.md,
"Languages"). The words of the interface are gettext messages; the names in the reference data —
departments, event categories and their classes — are data, shipped in Chinese with an English
column beside them. This is the one rule that picks between the two: the English text when the
request's language (LocaleMiddleware) is English and the data has one, the Chinese otherwise.
Code run outside a request reads `LANGUAGE_CODE`, which is Chinese.
"""

from __future__ import annotations

from django.utils.translation import get_language


def reads_english() -> bool:
    """True when the active language is English (`en`, `en-gb` …)."""
    return (get_language() or "").split("-")[0] == "en"


def in_reader_language(chinese: str, english: str) -> str:
    """`english` when the reader reads English and there is an English text; else `chinese`."""
    return english if english and reads_english() else chinese
