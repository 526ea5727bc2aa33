"""`POST /slack/interactions`: the incident message's buttons, clicked.

Slack signs each request with the app's signing secret; one whose signature is wrong, or
whose timestamp is more than 5 minutes off (a replay), gets 401 and changes nothing
(slack-sdk's `SignatureVerifier`). This path skips the bearer token: the signature is its
authentication. A click on *Acknowledge* queues PagerDuty's `acknowledge` for the incident;
*Silence 4 h* adds a silence for its key (streams/worker/silences.py). Either way the message
is updated to say who did what. Without a signing secret and a bot token the path answers 404.
"""

from __future__ import annotations

import logging
import time

import orjson
from faust.web import Request, Response, View
from slack_sdk.signature import SignatureVerifier

from alerting.silences import parse_silence
from alerting.slack import ACKNOWLEDGE, SlackBotNotifier, after_click
from alerting.slack_clicks import acknowledgement, note, parse_click, silence_request
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

    @pipeline.app.page(PATH)
    class SlackInteractions(View):
        async def post(self, request: Request) -> Response:
            if verifier is None or slack is None:
                return self.json({"error": "Slack buttons need SPENDWATCH_SLACK_SIGNING_SECRET and "
                                           "SPENDWATCH_SLACK_BOT_TOKEN"}, status=404)
            body = await request.read()
            try:
                signed = verifier.is_valid(body, request.headers.get("X-Slack-Request-Timestamp"),
                                           request.headers.get("X-Slack-Signature"))
            except ValueError:  # a timestamp that is not a number
                signed = False
            if not signed:
                log.warning("refused a Slack interaction: bad signature or stale timestamp")
                return self.json({"error": "bad signature or stale timestamp"}, status=401)
            try:
                click = parse_click(body)
            except (ValueError, KeyError, TypeError, IndexError, orjson.JSONDecodeError) as exc:
                return self.json({"error": f"not a click on a spendwatch button: {exc}"}, status=400)
            now = time.time()
            silence_id = None
            if click.action == ACKNOWLEDGE:
                paged = await acknowledge(acknowledgement(click, now))
                log.info("incident %s acknowledged by %s in Slack (%d PagerDuty receivers)",
                         click.incident["dedup_key"], click.user, paged)
            else:
                silence = parse_silence(silence_request(click, now), now)
                await shared_silences.add(silence)
                silence_id = silence.id
                log.info("silence %s added from Slack by %s for incident %s", silence.id, click.user,
                         click.incident["dedup_key"])
            said = note(click, now, silence_id)
            await slack.rewrite(click.channel, click.message_ts, said, after_click(click.blocks, click.action, said))
            return self.bytes(b"", status=200)
