"""Text that every store and every reply can carry: the characters XML 1.0 allows.

A report's text is stored in PostgreSQL (which refuses NUL in text) and answered as JSON and as GeoReport
XML (which cannot hold C0 control characters other than tab, newline and carriage return, nor U+FFFE,
U+FFFF or lone surrogates: XML 1.0 §2.2 ``Char``). A character outside that set makes one row break a whole
``requests.xml`` for every client, so text is refused where it comes in (``text_problem``) and the rare
stored value that predates the rule is normalised where it goes out (``xml_safe``).
"""

from __future__ import annotations

import re

# Everything outside XML 1.0's Char production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-…].
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
REPLACEMENT = "\ufffd"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be taken as text (its first character outside XML 1.0, named by code point and
    position), or None when it can."""
    found = NOT_XML.search(value)
    if found is None:
        return None
    return (f"holds the character U+{ord(found.group()):04X} at position {found.start()}, which text here "
            "cannot contain (control characters other than tab and line breaks, U+FFFE, U+FFFF, surrogates)")


def xml_safe(value: str) -> str:
    """``value`` with every character outside XML 1.0 replaced by U+FFFD (for output only)."""
    return NOT_XML.sub(REPLACEMENT, value)
