"""A staticfiles finder that exposes chosen files of npm packages under /static/vendor/.

Front-end libraries come from the npm registry (package.json + package-lock.json); this finder
publishes only the built files we name in settings.NPM_FILES, not the whole node_modules tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import CheckMessage, Warning
from django.core.files.storage import FileSystemStorage


class NpmFinder(BaseFinder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.root = Path(settings.NPM_ROOT)
        self.mapping: dict[str, str] = dict(settings.NPM_FILES)

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        missing = [src for src in self.mapping.values() if not (self.root / src).exists()]
        if missing:
            return [
                Warning(
                    f"npm packages not installed: {', '.join(missing)}",
                    hint="run `npm ci` (the demo and test commands do)",
                    id="cityops.W001",
                )
            ]
        return []

    def _resolve(self, path: str) -> Path | None:
        for prefix, src in self.mapping.items():
            if prefix.endswith("/"):
                if path.startswith(prefix):
                    candidate = (self.root / src / path[len(prefix) :]).resolve()
                    base = (self.root / src).resolve()
                    if base in candidate.parents and candidate.is_file():
                        return candidate
            elif path == prefix and (self.root / src).is_file():
                return self.root / src
        return None

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:
        found = self._resolve(path)
        if found is None:
            return []  # what Django's own finders answer for a miss (None would read as a hit)
        return [str(found)] if find_all else str(found)

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        for prefix, src in self.mapping.items():
            source = self.root / src
            if prefix.endswith("/"):
                if not source.is_dir():
                    continue
                storage = FileSystemStorage(location=str(source))
                storage.prefix = prefix.rstrip("/")  # type: ignore[attr-defined]
                for file in sorted(source.rglob("*")):
                    if file.is_file():
                        yield str(file.relative_to(source)), storage
            elif source.is_file():
                storage = FileSystemStorage(location=str(source.parent))
                storage.prefix = str(Path(prefix).parent)  # type: ignore[attr-defined]
                yield source.name, storage
