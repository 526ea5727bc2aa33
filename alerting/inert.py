"""Names as text: nothing a producer names may turn into a live link, mention or channel in a sink.

Team, endpoint, model, user and run names come from whoever writes to our topics. Escaping
`& < >` (Slack's advice for mrkdwn) stops `<!channel>` and `<https://x|re-auth>`, but not what
receivers find in plain text by themselves: Slack (unless a text object is `verbatim`, and the
top-level `text` and notifications never are), PagerDuty's web app, and every tool that forwards
an incident to chat or email turn bare URLs (`https://evil.example/login`), bare domains
(`evil.example`), emails, `@here` and `#general` into links, pings and channel references.

So each such name gets a WORD JOINER (U+2060) after a dot, an `@` or `#` that something follows,
and between `:` and `/`. Every auto-linker we know (Slack's, PagerDuty's, linkify-it, email
clients') matches a host name, scheme, address or handle only as an unbroken run of the
characters those may hold; U+2060 is none of them, so the run ends there: `evil.` is no host,
`https:` no scheme, `@` no handle. The joiner is invisible and, unlike a zero-width space, no
place to break a line, so the name reads exactly as written. Inline code (backticks) was the
other candidate: a backtick in a name ends the code span, and Slack documents nothing about
auto-linking inside code, so it guarantees nothing on its own. Slack's mrkdwn objects are also marked `verbatim`
(alerting/slack.py), which is Slack's documented switch for the same thing; the joiner covers
the places that have no such switch.

>>> inert("<@U123> re-auth at https://evil.example/login") == (
...     "\u2039@\u2060U123\u203a re-auth at https:\u2060//evil.\u2060example/login")
True
>>> break_autolinks("#general @here ops@evil.example") == "#\u2060general @\u2060here ops@\u2060evil.\u2060example"
True
>>> break_autolinks("search/chat-api at 12x, $902.57/h") == "search/chat-api at 12x, $902.57/h"
True
"""

from __future__ import annotations

import re

WORD_JOINER = "\u2060"
# After a dot (with the ideographic and full-width dots, which browsers and IDNA read as dots)
# that a letter follows (a top-level domain starts with one; a digit after a dot is an amount,
# "$902.57", left as written); after @ or # (and their full-width forms) that anything but
# a space follows; between : and /. Never twice: the joiner itself is neither.
_LINKABLE = re.compile(r"(?<=[.\u3002\uff0e\uff61])(?=[^\W\d_])|(?<=[@#\uff20\uff03])(?=[^\s\u2060])|(?<=:)(?=/)")


def break_autolinks(text: str) -> str:
    """`text` as it reads, with nothing in it an auto-linker takes for a URL, domain, email, handle or channel."""
    return _LINKABLE.sub(WORD_JOINER, text)


def inert(text: str) -> str:
    """For plain-text sinks (PagerDuty): no `<...>` link or mention syntax, and nothing auto-linkable.

    The angle brackets become look-alike quotation marks, so `<!here>`, `<@U123>` and
    `<https://x|y>` read the same but are no syntax anywhere they are forwarded.
    """
    return break_autolinks(text.replace("<", "\u2039").replace(">", "\u203a"))
