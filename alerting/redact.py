"""Secrets out of the text of an error, before it is cut short (issue "Poison").

A receiver's error body may echo what we sent it: a routing key, a master key, a token, a URL
that embeds one. Cutting the body first and masking the secret after lets a prefix of the key
survive at the cut, so the whole text is masked first; and any run of 8 or more characters of
a secret (a key the receiver echoed shortened, or its tail) is masked as well. Under 8
characters a fragment tells too little of a key to matter, and every shorter match would mask
ordinary words.

>>> redacted("bad key abcdefghijklmnopqrstuvwxyz012345, try again", ["abcdefghijklmnopqrstuvwxyz012345"], 30)
'bad key **********, try again'
>>> redacted("x" * 25 + "abcdefghijklmnopqrstuvwxyz012345", ["abcdefghijklmnopqrstuvwxyz012345"], 30)
'xxxxxxxxxxxxxxxxxxxxxxxxx*****'
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "**********"
#: The shortest run of a secret's characters that is masked.
FRAGMENT = 8


def redacted(text: str, secrets: Iterable[str], limit: int) -> str:
    """The first `limit` characters of `text` with every fragment of each secret masked.

    Reads only as far as the output needs (a long error page costs `limit` steps), yet each
    fragment is matched against the whole text, so one that begins before the cut is masked
    whole and no prefix of it is left at the end.
    """
    windows: dict[str, list[tuple[str, int]]] = {}  # each FRAGMENT-long piece of a secret -> (secret, offset)
    for secret in secrets:
        if 0 < len(secret) < FRAGMENT:  # too short for fragments: only the whole of it, anywhere
            text = text.replace(secret, MASK)
        for at in range(len(secret) - FRAGMENT + 1):
            windows.setdefault(secret[at:at + FRAGMENT], []).append((secret, at))
    if not windows:
        return text[:limit]
    out: list[str] = []
    length, i = 0, 0
    while i < len(text) and length < limit:
        found = windows.get(text[i:i + FRAGMENT])
        if found is None:
            out.append(text[i])
            length, i = length + 1, i + 1
            continue
        longest = max(_common_prefix(text, i, secret, at) for secret, at in found)
        out.append(MASK)
        length, i = length + len(MASK), i + longest
    return "".join(out)[:limit]


def _common_prefix(text: str, i: int, secret: str, at: int) -> int:
    n = FRAGMENT
    while i + n < len(text) and at + n < len(secret) and text[i + n] == secret[at + n]:
        n += 1
    return n
