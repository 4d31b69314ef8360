"""GeoReport v2 replies as JSON or XML: the same data, shaped by the format the path's extension names.

JSON is the data as it is. XML follows the GeoReport examples: a list becomes a root element holding one
element per item (``<services><service>…``, ``<service_requests><request>…``, ``<errors><error>…``), an
object becomes an element per key, ``null`` an empty element, booleans ``true``/``false``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from fastapi.responses import Response

from spatial.errors import NotFoundError
from spatial.text import xml_safe

JSON_MEDIA = "application/json"
XML_MEDIA = "text/xml; charset=utf-8"
FORMATS = {"json": JSON_MEDIA, "xml": XML_MEDIA}
# The element of each item of a list, by the list's element name (GeoReport v2 XML examples).
ITEM_TAGS = {
    "services": "service", "attributes": "attribute", "values": "value", "service_requests": "request",
    "errors": "error", "endpoints": "endpoint", "formats": "format",
}


def check_format(fmt: str) -> str:
    """Return ``fmt`` when it is a format we serve (json, xml); NotFoundError otherwise."""
    if fmt not in FORMATS:
        raise NotFoundError(f"unknown format {fmt!r}: use .json or .xml", format=fmt)
    return fmt


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    # Intake refuses what XML 1.0 cannot hold (spatial.text); a value stored before that rule is normalised
    # here, or one such row would make the whole document unparseable for every client.
    return xml_safe(str(value))


def _fill(element: ET.Element, value: Any) -> None:
    """Put ``value`` inside ``element``: keys and list items become children, scalars its text."""
    if isinstance(value, dict):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), item)
    elif isinstance(value, list):
        tag = ITEM_TAGS.get(element.tag, "item")
        for item in value:
            _fill(ET.SubElement(element, tag), item)
    else:
        element.text = _text(value)


def to_xml(root: str, data: Any) -> bytes:
    """Return ``data`` as a UTF-8 XML document whose root element is ``root``."""
    element = ET.Element(root)
    _fill(element, data)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def render(fmt: str, root: str, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Return ``data`` in ``fmt``; ``root`` names the XML root element (``services``, ``service_requests``…)."""
    body = to_xml(root, data) if fmt == "xml" else json.dumps(data, ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, media_type=FORMATS.get(fmt, JSON_MEDIA), headers=headers)


def render_error(fmt: str, status: int, description: str) -> Response:
    """Return a GeoReport error list: ``[{"code", "description"}]``, or ``<errors><error>…`` in XML."""
    return render(fmt if fmt in FORMATS else "json", "errors", [{"code": status, "description": description}],
                  status=status)
