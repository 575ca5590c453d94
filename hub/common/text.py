"""Text shown to people, shared by the core and the CLI (the core never imports ``bhhub.cli``)."""

from __future__ import annotations


def clip(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut at a word boundary with ``...`` when longer:
    "connection refused by 127.0.0.1" never ends "connection refu"."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    head = text[:width - 3]
    if text[width - 3] != " " and " " in head:  # the cut fell inside a word: drop that word
        head = head.rsplit(" ", 1)[0]
    return head.rstrip(" ,;:") + "..."
