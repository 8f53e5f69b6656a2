"""Text from a backup, made safe to quote: one length cap and one way to show odd bytes.

Why: names, keys and values come from the backup. A 1 MB member name or a value full of
control characters must give a short, printable line in every output, so every quoted piece
goes through ``clip`` once, where a message is made, and no writer has to remember.
"""

from __future__ import annotations

ELLIPSIS = "…"
DEFAULT_CHARS = 300


def clip(text: str, limit: int = DEFAULT_CHARS) -> str:
    """``text`` at most ``limit`` characters, with an ellipsis: cut between words (at the last space of the
    second half), or inside one value only when a single value fills that whole half."""
    if len(text) <= limit:
        return text
    cut = text[: max(1, limit - 1)]
    space = cut.rfind(" ")
    if text[len(cut)] == " ":  # the cut falls just before a space: the last word is whole
        space = len(cut)
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def printable(text: str) -> str:
    """Control characters and undecodable bytes (surrogate escapes) shown as escapes, never raw."""
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:          # os.fsdecode's escape of a non-UTF-8 byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(char)
    return "".join(out)


def quote(text: str, limit: int = DEFAULT_CHARS) -> str:
    """What a message shows of a name or value from the backup: printable, then clipped."""
    return clip(printable(text), limit)
