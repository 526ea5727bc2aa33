"""Slack, both ways a workspace allows: an incoming webhook, or a bot token with chat.postMessage.

Every value that comes from events (team, endpoint, run, the summary built from them)
is escaped, so a team named `<!channel>` pings nobody, and made inert (alerting/inert.py), so a
run named `https://evil.example/login`, a team `#general` or `@here` is text, never a link, a
channel or a ping. Block Kit limits are kept
(header 150 characters, section text 3000, at most 10 fields of 2000).

With a bot token the first message of an incident is remembered (`threads`: any
mutable mapping, a Faust table in the worker), a resolve is posted as a reply in its
thread and the first message is updated to say it is over. With a webhook a resolve
is a short new message.

>>> escape("<!channel> & <@U123>")
'&lt;!channel&gt; &amp; &lt;@U123&gt;'
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import aiohttp
import orjson
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from alerting.inert import break_autolinks
from alerting.notifier import Alert, DeliveryError, error_for_status
from detectors.amounts import per_hour, usd

# slack_sdk logs request URLs at DEBUG, and a webhook URL is a secret: its clients get a logger
# that stays silent; delivery is logged by alerting.retry instead.
_log = logging.getLogger("spendwatch.alerting")
_SILENT = logging.getLogger("spendwatch.alerting.slack_sdk")
_SILENT.setLevel(logging.CRITICAL + 1)
_SILENT.propagate = False

HEADER_MAX, TEXT_MAX, FIELD_MAX = 150, 3000, 2000
#: The kind of a message that is news, not an incident: an action taken (alerting/actions.py).
NOTICE = "notice"
TITLES = {"flash_spike": "Flash spike", "runaway_training": "Runaway training",
          "budget_threshold": "Budget threshold", "budget_forecast": "Budget forecast",
          "model_tier_violation": "Model tier violation", "unit_cost_spike": "Cost per outcome up",
          "outcome_drought": "Outcomes stopped", "gpu_idle": "Idle GPUs",
          "serving_costlier_than_api": "Serving costlier than the API"}
#: What the baseline is called, by kind.
BASELINES = {"runaway_training": "Limit", "budget_threshold": "Budget", "budget_forecast": "Budget",
             "model_tier_violation": "Allowed", "gpu_idle": "Idle under", "serving_costlier_than_api": "API price"}
EMOJI = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}
PERMANENT_API_ERRORS = {"channel_not_found", "not_in_channel", "invalid_auth", "not_authed", "account_inactive",
                        "token_revoked", "invalid_blocks", "msg_too_long", "no_text", "is_archived"}


@contextmanager
def unformattable() -> Iterator[None]:
    """A message that cannot be built is a permanent failure, never an outage to retry for an hour."""
    try:
        yield
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise DeliveryError(f"slack: cannot format this alert: {type(exc).__name__}: {exc}"[:300],
                            retryable=False) from None


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: the three characters that make links and mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def named(text: str) -> str:
    """A text that holds names (a name, or a summary built from names): nothing in it auto-links."""
    return break_autolinks(text)


def mrkdwn(text: str, limit: int) -> dict[str, Any]:
    """A mrkdwn text object of already escaped text. `verbatim`: Slack's documented switch that keeps it
    from linking URLs and channel names and parsing mentions in the text (its manual `<url|label>`
    links, ours, still work); `named` breaks the same things where no such switch exists."""
    return {"type": "mrkdwn", "text": clip(text, limit), "verbatim": True}


def plain(text: str, limit: int) -> str:
    """For plain_text fields, which are not escaped but must stay short and mention-free."""
    text = text.replace("<", "\u2039").replace(">", "\u203a")  # angle quotation marks: look alike, are plain text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def subject(alert: Alert) -> str:
    return named(f"{alert['team']} / {alert.get('endpoint') or alert.get('run_id') or ''}")


#: Units that are dollars per something (CONTRACT, third round).
PER_UNIT = {"usd_per_outcome": " per outcome", "usd_per_million_tokens": " per million tokens"}


def amount(value: float | None, unit: str, window_s: float | None = None) -> str:
    """A figure as a person reads it; a window's dollars also as the hourly rate they run at."""
    if value is None:
        return "n/a"
    if unit in PER_UNIT:
        return usd(value) + PER_UNIT[unit]
    if unit == "utilization_pct":
        return f"{value:,.1f}% utilization"
    if unit != "usd":
        return f"{value:,.0f} {unit}"
    return usd(value) + (f" (about {per_hour(value, window_s)})" if window_s else "")


def window_seconds(alert: Alert) -> float | None:
    window = alert.get("window")
    if not window:
        return None
    return (datetime.fromisoformat(window["end"]) - datetime.fromisoformat(window["start"])).total_seconds() or None


def times(ratio: float | None) -> str:
    return "n/a (nothing expected)" if ratio is None else f"{ratio:,.1f}x"


#: A flash spike's cause (CONTRACT, "Added in the second round") in words, and the ratio that shows it.
CAUSES = {"traffic": ("More calls", "calls_ratio"),
          "tokens_per_call": ("More tokens per call", "tokens_per_call_ratio"),
          "model_mix": ("A pricier model mix", "cost_per_token_ratio")}


def why_fields(alert: Alert) -> list[str]:
    """The cause, with its ratio, and the top contributors with their shares of the extra spend."""
    label, figure = CAUSES.get(alert["cause"], (named(str(alert["cause"])), ""))
    ratio = (alert.get("cause_figures") or {}).get(figure)
    cause = f"*Cause*\n{label}" + (f" ({times(ratio)} usual)" if ratio is not None else "")
    contributors = alert.get("contributors") or []
    lines = [f"{named(str(c['dimension']))} {named(str(c['value']))}: {c['share']:.0%}" for c in contributors[:5]]
    return [cause, "*Top contributors*\n" + ("\n".join(lines) if lines else "none stands out")]


def link_target(href: str) -> str:
    """A URL as Slack's `<url|label>` syntax can carry it: `<`, `>`, `|` and spaces percent-encoded."""
    return href.replace("%", "%25").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C").replace(" ", "%20") \
        if any(c in href for c in "<>| ") else href


def fallback_text(alert: Alert) -> str:
    """The notification text (mrkdwn-parsed, so escaped)."""
    state = "RESOLVED" if alert["status"] == "resolved" else alert["severity"].upper()
    return clip(f"[{state}] {TITLES.get(alert['kind'], alert['kind'])}: {escape(named(alert['summary']))}", TEXT_MAX)


def incident_blocks(alert: Alert, resolved_note: str | None = None, buttons: bool = False) -> list[dict[str, Any]]:
    """The Block Kit message for an alert; `buttons`: a firing one carries Acknowledge and Silence 4 h."""
    title = TITLES.get(alert["kind"], alert["kind"])
    header = f"{'Resolved: ' if alert['status'] == 'resolved' else ''}{title}: {subject(alert)}"
    unit, window_s = alert.get("unit", ""), window_seconds(alert)
    fields = [
        f"*Observed*\n{amount(alert['observed'], unit, window_s)}",
        f"*{BASELINES.get(alert['kind'], 'Expected')}*\n{amount(alert['baseline'], unit, window_s)}",
        f"*Ratio*\n{times(alert['ratio'])}",
        f"*Severity*\n{alert['severity']}",
        f"*Since*\n{alert.get('since', alert['ts'])}",
    ]
    if alert.get("window"):
        fields.append(f"*Window*\n{alert['window']['start']} to {alert['window']['end'][11:]}")
    if alert.get("cause"):
        fields += why_fields(alert)
    if alert.get("budget"):
        fields.append(f"*Period*\n{alert['period_start']} to {alert['period_end']}")
        if alert.get("forecast_low_usd") is not None:
            fields.append(f"*Forecast range*\n{amount(alert['forecast_low_usd'], unit)} to "
                          f"{amount(alert['forecast_high_usd'], unit)}"
                          + (f", crossing on {alert['crosses_on']}" if alert.get("crosses_on") else ""))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text",
                                    "text": plain(f"{EMOJI.get(alert['status'], '')} {header}".strip(), HEADER_MAX)}},
        {"type": "section", "text": mrkdwn(escape(named(alert["summary"])), TEXT_MAX)},
        {"type": "section", "fields": [mrkdwn(escape(f), FIELD_MAX) for f in fields[:10]]},
    ]
    if resolved_note:
        blocks.append({"type": "section", "text": mrkdwn(escape(named(resolved_note)), TEXT_MAX)})
    elif buttons and alert["status"] == "firing":
        blocks.append(incident_buttons(alert))
    page = (alert.get("links") or {}).get("page")
    if page and len(page) <= 3000:  # a button's url: at most 3000 characters; a link button needs no click handler
        blocks.append({"type": "actions", "block_id": "spendwatch-view", "elements": [
            {"type": "button", "action_id": "view_incident", "text": {"type": "plain_text", "text": "View"},
             "url": page}]})
    links = " · ".join(f"<{link_target(href)}|{escape(name)}>" for name, href in (alert.get("links") or {}).items())
    context = f"spendwatch · {alert['kind']} · incident {alert['dedup_key'][:12]}" + (f" · {links}" if links else "")
    blocks.append({"type": "context", "elements": [mrkdwn(context, TEXT_MAX)]})
    return blocks


#: The incident message's buttons (issue "Route"): action_id -> label. Clicks come to POST /slack/interactions.
ACKNOWLEDGE, SILENCE = "acknowledge", "silence_4h"
BUTTONS = {ACKNOWLEDGE: "Acknowledge", SILENCE: "Silence 4 h"}
ACTIONS_BLOCK = "spendwatch-incident"


def incident_buttons(alert: Alert) -> dict[str, Any]:
    """An actions block whose buttons carry what a click needs: the incident and what to silence.

    Slack signs the click it sends back, value included, so the value can be trusted then.
    """
    value = orjson.dumps({name: alert.get(name) for name in ("dedup_key", "team", "endpoint", "kind", "severity",
                                                            "alert_id")}).decode()
    return {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": [
        {"type": "button", "action_id": action, "text": {"type": "plain_text", "text": label},
         "value": value, **({"style": "primary"} if action == ACKNOWLEDGE else {})}
        for action, label in BUTTONS.items()]}


def after_click(blocks: list[dict[str, Any]], action: str, note: str) -> list[dict[str, Any]]:
    """The message once `action` was clicked: that button gone, and a line saying who did what."""
    out = []
    for block in blocks:
        if block.get("type") == "actions" and block.get("block_id") == ACTIONS_BLOCK:
            kept = [e for e in block.get("elements", []) if e.get("action_id") != action]
            if kept:
                out.append(dict(block, elements=kept))
        else:
            out.append(block)
    note_block = {"type": "context", "elements": [mrkdwn(escape(named(note)), TEXT_MAX)]}
    return [*out[:-1], note_block, out[-1]] if out else [note_block]


def notice(text: str) -> dict[str, Any]:
    """A message that is one line of news (an action taken), escaped like every value from events."""
    safe = escape(named(text))
    return {"text": clip(safe, TEXT_MAX), "blocks": [{"type": "section", "text": mrkdwn(safe, TEXT_MAX)}]}


class SlackWebhookNotifier:
    name = "slack"

    def __init__(self, webhook_url: str) -> None:
        # No retry handlers: retries live in alerting.retry.
        self._client = AsyncWebhookClient(webhook_url, retry_handlers=[], logger=_SILENT)

    def __repr__(self) -> str:
        return "SlackWebhookNotifier(webhook_url=**********)"

    async def notify(self, alert: Alert) -> None:
        body = notice(alert["summary"]) if alert.get("kind") == NOTICE else self._message(alert)
        try:
            response = await self._client.send_dict(body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:  # the webhook client raises only for transport
            raise DeliveryError(f"slack webhook unreachable: {type(exc).__name__}", retryable=True) from None
        if response.status_code >= 300:
            raise error_for_status("slack webhook", response.status_code, response.headers.get("Retry-After")
                                   if response.headers else None, str(response.body)[:100])

    @staticmethod
    def _message(alert: Alert) -> dict[str, Any]:
        with unformattable():
            if alert["status"] == "resolved":
                body = {"text": fallback_text(alert), "blocks": [
                    {"type": "section", "text": mrkdwn(
                        f"{EMOJI['resolved']} *Resolved*: {escape(named(alert['summary']))}", TEXT_MAX)}]}
            else:
                body = {"text": fallback_text(alert), "blocks": incident_blocks(alert)}
        return body


class SlackBotNotifier:
    name = "slack"

    def __init__(self, token: str, channel: str, api_url: str, threads: MutableMapping[str, Any],
                 thread_scope: str = "", buttons: bool = False) -> None:
        self._client = AsyncWebClient(token=token, base_url=api_url, retry_handlers=[], logger=_SILENT)
        self.channel = channel
        self.buttons = buttons  # only where Slack can send the clicks back (a signing secret is set)
        # dedup_key (+ "|" + scope) -> {"channel", "ts", "alert"} of the incident's first message. The
        # catch-all channel's scope is "": its keys are those written before routes existed.
        self.threads = threads
        self.thread_scope = thread_scope

    async def rewrite(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> bool:
        """Replace a message (after a click); False, logged, when Slack would not take it.

        `text` is the notification text, raw (it names who clicked): escaped and made inert here."""
        try:
            await self._client.chat_update(channel=channel, ts=ts, text=clip(escape(named(text)), TEXT_MAX),
                                           blocks=blocks)
            return True
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            _log.warning("slack: could not update message %s in %s: %s", ts, channel, type(exc).__name__)
            return False

    def thread_key(self, dedup_key: str) -> str:
        return f"{dedup_key}|{self.thread_scope}" if self.thread_scope else dedup_key

    def __repr__(self) -> str:
        return f"SlackBotNotifier(channel={self.channel!r}, token=**********)"

    async def notify(self, alert: Alert) -> None:
        if alert.get("kind") == NOTICE:
            try:
                await self._client.chat_postMessage(channel=self.channel, **notice(alert["summary"]))
                return
            except SlackApiError as exc:
                raise error_for_status("slack api", exc.response.status_code if exc.response.status_code != 200
                                       else 500, exc.response.headers.get("Retry-After")) from None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise DeliveryError(f"slack api unreachable: {type(exc).__name__}", retryable=True) from None
        thread = self.threads.get(self.thread_key(alert["dedup_key"]))
        with unformattable():
            text, blocks = fallback_text(alert), incident_blocks(alert, buttons=self.buttons and not thread)
            closed = incident_blocks(thread["alert"], "Resolved at " + alert["ts"]) if thread else None
        try:
            if alert["status"] == "resolved" and thread:
                await self._client.chat_postMessage(channel=thread["channel"], thread_ts=thread["ts"],
                                                    text=text, reply_broadcast=False, blocks=blocks)
                await self._client.chat_update(channel=thread["channel"], ts=thread["ts"], text=text, blocks=closed)
                return
            if thread and alert.get("repeat"):
                await self._client.chat_postMessage(channel=thread["channel"], thread_ts=thread["ts"],
                                                    text=text, blocks=blocks)
                return
            response = await self._client.chat_postMessage(channel=self.channel, text=text, blocks=blocks)
            if alert["status"] == "firing":
                self.threads[self.thread_key(alert["dedup_key"])] = {
                    "channel": response["channel"], "ts": response["ts"], "alert": alert}
        except SlackApiError as exc:
            status = exc.response.status_code
            error = exc.response.get("error", "") if isinstance(exc.response.data, dict) else ""
            if status == 200 and error in PERMANENT_API_ERRORS:
                raise DeliveryError(f"slack api refused: {error}", retryable=False) from None
            raise error_for_status("slack api", status if status != 200 else 500,
                                   exc.response.headers.get("Retry-After"), error) from None
        except DeliveryError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"slack api unreachable: {type(exc).__name__}", retryable=True) from None
