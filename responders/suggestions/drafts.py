"""Drafts from suggestions: the order number in a mention, and a past answer made fit for a new customer.

`order_number` finds what customers write as their order, case or customer number, in English and
German: after a keyword ("order", "Bestellung", "Bestellnr.", "Auftrag", "Kundennummer", "case",
"ticket", "Vorgang"), as "#12345", or as an order-shaped token (letters and at least 6 digits:
"A1234567", "DE-20260412"). Phone-number-like runs of digits without a keyword are not taken.

`adapt_answer` rewrites a past answer for the new mention: the old customer's name and @handle become
the new one's, the old order number becomes the new one (or the `{order}` placeholder, which the agent
sees and fills, when the new mention names none). Nothing is ever sent from here: the result only
fills the composer.
"""

from __future__ import annotations

import re

ORDER_PLACEHOLDER = "{order}"
_KEYWORDS = (r"order|order\s+number|order\s+no|bestellung|bestellnummer|bestellnr|auftrag|auftragsnummer|"
             r"auftragsnr|kundennummer|kundennr|customer\s+number|case|ticket|vorgang|vorgangsnummer|"
             r"sendung|sendungsnummer|tracking\s+number|rechnung|rechnungsnummer|invoice")
_KEYWORD_RE = re.compile(
    rf"\b(?:{_KEYWORDS})\.?\s*(?:no\.?|nr\.?|number|nummer|id|#|:|-)?\s*:?\s*#?\s*([A-Z]{{0,4}}-?\d[\dA-Z-]{{3,19}})\b",
    re.IGNORECASE)
_HASH_RE = re.compile(r"(?<![\w&])#(\d{4,12})\b")
_SHAPED_RE = re.compile(r"\b([A-Z]{1,4}-?\d{6,14})\b")


def order_number(text: str) -> str | None:
    """The order (case, customer) number the text names, or None; see the module docstring."""
    for pattern in (_KEYWORD_RE, _HASH_RE, _SHAPED_RE):
        found = pattern.search(text)
        if found:
            return found.group(1).rstrip("-")
    return None


def _names(name: str | None, handle: str | None) -> list[str]:
    out = []
    if handle:
        out.append("@" + handle.removeprefix("@"))
    if name:
        out.append(name)
        first = name.split()[0] if name.split() else ""
        if first and first != name and len(first) > 2:
            out.append(first)
    return out


def adapt_answer(answer: str, *, old_text: str, old_name: str | None, old_handle: str | None,
                 new_name: str, new_handle: str | None, new_text: str) -> str:
    """`answer` (sent to the old mention) rewritten for the new one; see the module docstring."""
    result = answer
    if old_handle and new_handle:
        result = re.sub(rf"@{re.escape(old_handle.removeprefix('@'))}\b", "@" + new_handle.removeprefix("@"),
                        result, flags=re.IGNORECASE)
    elif old_handle:
        result = re.sub(rf"@{re.escape(old_handle.removeprefix('@'))}\b", new_name, result, flags=re.IGNORECASE)
    first_name = (new_name.split() or [new_name])[0]
    for old in _names(old_name, None):
        result = re.sub(rf"(?<![@\w]){re.escape(old)}\b", new_name if old == old_name else first_name, result)
    old_order = order_number(old_text)
    if old_order:
        result = re.sub(rf"(?<![\w]){re.escape(old_order)}(?![\w])", order_number(new_text) or ORDER_PLACEHOLDER,
                        result)
    return result
