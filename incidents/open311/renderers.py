"""Open311 answers as bytes: JSON, or XML with the spec's element names; and its error format.

GeoReport v2 names the format in the URL (`services.json`, `services.xml`), requires UTF-8 with
the charset in the Content-Type, and an XML declaration with encoding="UTF-8". Lists become a
root element holding one element per item (`<services><service>…`, `<service_requests>
<request>…`, `<errors><error>…`, discovery's `<endpoints><endpoint>…` and `<formats><format>…`);
`None` is an empty element, booleans are `true`/`false`.
Errors are a list of `{"code": <HTTP status>, "description": "<field>：<reason>"}`, the
reason in the reader's language (`Accept-Language`; "<field>: <reason>" in English).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree import ElementTree

from django.http import HttpResponse
from django.utils.translation import gettext as _

FORMATS = ("json", "xml")
CONTENT_TYPES = {
    "json": "application/json; charset=utf-8",
    "xml": "text/xml; charset=utf-8",
}
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# The element of one item of each list the spec defines.
ITEM_ELEMENT = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}

# Characters XML 1.0 cannot carry at all (not even escaped): C0 controls except tab, newline and
# carriage return, lone surrogates, U+FFFE and U+FFFF. A description may hold them (whatever a
# client sent); they are dropped from XML answers, which would otherwise not parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _element(parent: ElementTree.Element, name: str, value: Any) -> None:
    node = ElementTree.SubElement(parent, name)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _element(node, key, item)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for item in value:
            _element(node, ITEM_ELEMENT[name], item)
    else:
        node.text = _text(value)


def xml_document(root: str, payload: Mapping[str, Any] | Sequence[Any]) -> bytes:
    """`payload` as an XML document whose root element is `root`: a list gives one item element
    per entry (ITEM_ELEMENT), a mapping one child element per key."""
    node = ElementTree.Element(root)
    if isinstance(payload, Mapping):
        for key, item in payload.items():
            _element(node, key, item)
    else:
        for item in payload:
            _element(node, ITEM_ELEMENT[root], item)
    return (XML_DECLARATION + ElementTree.tostring(node, encoding="unicode")).encode("utf-8")


def answer(
    fmt: str, root: str, payload: Mapping[str, Any] | Sequence[Any], status: int = 200
) -> HttpResponse:
    """The HTTP answer carrying `payload` in `fmt` (json or xml); `root` names the XML root."""
    if fmt == "xml":
        body = xml_document(root, payload)
    else:
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return HttpResponse(body, status=status, content_type=CONTENT_TYPES[fmt])


def problem(field: str, reason: str) -> str:
    """One error's description: the parameter as the client names it, then the reason
    (`lat：必须是数字。`). The spec's error has no field of its own, so the name leads."""
    return _("%(label)s：%(value)s") % {"label": field, "value": reason}


def error_answer(fmt: str, status: int, descriptions: Sequence[str]) -> HttpResponse:
    """The spec's error format: one `{"code", "description"}` per problem."""
    errors = [{"code": status, "description": text} for text in descriptions]
    return answer(fmt if fmt in FORMATS else "json", "errors", errors, status)
