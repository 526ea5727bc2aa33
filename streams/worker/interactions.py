"""`POST /slack/interactions`: the incident message's buttons, clicked.

Slack signs each request with the app's signing secret; one whose signature is wrong, or
whose timestamp is more than 5 minutes off (a replay), gets 401 and changes nothing
(slack-sdk's `SignatureVerifier`). This path skips the bearer token: the signature is its
authentication. A click on *Acknowledge* queues PagerDuty's `acknowledge` for the incident;
*Silence 4 h* adds a silence for its key (streams/worker/silences.py), or extends the one the
incident has. Either way the message is updated to say who did what. A captured click sent
again within those 5 minutes changes nothing (alerting/slack_clicks.py says how). A click
that is not one of ours, or whose values make no silence, is a 400; one past
`SPENDWATCH_MAX_SILENCES` a 409, and the message says so. Without a signing secret and a bot
token the path answers 404.
"""

from __future__ import annotations

import logging
import time

from faust.web import Request, Response, View
from slack_sdk.signature import SignatureVerifier

from alerting.silences import TooManySilences
from alerting.slack import ACKNOWLEDGE, SlackBotNotifier, after_click
from alerting.slack_clicks import (
    AcceptedClicks,
    Click,
    acknowledgement,
    is_view_click,
    note,
    parse_click,
    refused,
    silence_for_click,
)
from streams.worker.delivery import Acknowledge
from streams.worker.pipeline import Pipeline
from streams.worker.silences import SharedSilences

log = logging.getLogger("spendwatch.slack")

PATH = "/slack/interactions"


def attach(pipeline: Pipeline, shared_silences: SharedSilences, acknowledge: Acknowledge) -> None:
    settings = pipeline.settings
    secret, token = settings.slack_signing_secret, settings.slack_bot_token
    verifier = SignatureVerifier(secret.get_secret_value()) if secret is not None else None
    slack = SlackBotNotifier(token.get_secret_value(), settings.slack_channel or "", settings.slack_api_url, {}) \
        if token is not None else None
    accepted = AcceptedClicks()

    @pipeline.app.page(PATH)
    class SlackInteractions(View):
        async def post(self, request: Request) -> Response:
            if verifier is None or slack is None:
                return self.json({"error": "Slack buttons need SPENDWATCH_SLACK_SIGNING_SECRET and "
                                           "SPENDWATCH_SLACK_BOT_TOKEN"}, status=404)
            body = await request.read()
            stamp_text, signature = (request.headers.get("X-Slack-Request-Timestamp"),
                                     request.headers.get("X-Slack-Signature"))
            try:
                signed = verifier.is_valid(body, stamp_text, signature)
            except ValueError:  # a timestamp that is not a number
                signed = False
            if not signed or stamp_text is None or signature is None:
                log.warning("refused a Slack interaction: bad signature or stale timestamp")
                return self.json({"error": "bad signature or stale timestamp"}, status=401)
            now, stamp = time.time(), int(stamp_text)  # the verifier read it as an int within 5 minutes of now
            if not accepted.first_time(signature, stamp, now):
                log.info("ignored a Slack click this worker already took (a replay)")
                return self.bytes(b"", status=200)
            if is_view_click(body):
                return self.bytes(b"", status=200)  # Slack opened the incident's page; nothing to do here
            try:
                click = parse_click(body)
            except ValueError as exc:
                return self.json({"error": f"not a click on a spendwatch button: {exc}"}, status=400)
            if click.action == ACKNOWLEDGE:
                paged = await acknowledge(acknowledgement(click, now))
                log.info("incident %s acknowledged by %s in Slack (%d PagerDuty receivers)",
                         click.incident["dedup_key"], click.user, paged)
                said = note(click, stamp)
                blocks = after_click(click.blocks, click.action, said)
                await slack.rewrite(click.channel, click.message_ts, said, blocks)
                return self.bytes(b"", status=200)
            return await self._silence(slack, click, stamp, now)

        async def _silence(self, slack: SlackBotNotifier, click: Click, stamp: int, now: float) -> Response:
            try:
                silence, new = silence_for_click(click, stamp, now, pipeline.silences)
                if new:
                    await shared_silences.add(silence)
            except (ValueError, TooManySilences) as exc:
                status = 409 if isinstance(exc, TooManySilences) else 400
                log.warning("refused a Silence click by %s on incident %s: %s", click.user,
                            click.incident["dedup_key"], exc)
                said = f"Not silenced: {exc}"
                await slack.rewrite(click.channel, click.message_ts, said, refused(click, str(exc)))
                return self.json({"error": f"not silenced: {exc}"}, status=status)
            if new:
                log.info("silence %s set from Slack by %s for incident %s until %s", silence.id, click.user,
                         click.incident["dedup_key"], silence.to_json()["ends_at"])
            said = note(click, stamp, silence)
            await slack.rewrite(click.channel, click.message_ts, said, after_click(click.blocks, click.action, said))
            return self.bytes(b"", status=200)
