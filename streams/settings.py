"""Every setting, read once from `SPENDWATCH_*` variables (or `.env`) into one frozen object.

Thresholds can be overridden per team and per endpoint with `SPENDWATCH_THRESHOLDS`, a JSON
object whose keys are `team` or `team/endpoint` (the more specific wins):

    SPENDWATCH_THRESHOLDS='{"search": {"spike_ratio": 15}, "search/chat-api": {"spike_min_usd": 5}}'
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError as PydanticSettingsError

from alerting.model import MATCHABLE
from detectors.verdict import Severity
from streams.errors import SettingsError

#: The thresholds a team or endpoint may override.
THRESHOLD_NAMES = (
    "spike_ratio",
    "spike_min_usd",
    "spike_min_tokens",
    "spike_min_calls",
    "training_buffer",
    "training_ceiling_usd",
)


class RouteMatch(BaseModel):
    """What a route takes: each field named must be one of its values (a string is a list of one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: tuple[str, ...] | None = None
    endpoint: tuple[str, ...] | None = None
    kind: tuple[str, ...] | None = None
    severity: tuple[Severity, ...] | None = None

    @field_validator("team", "endpoint", "kind", "severity", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        values = [value] if isinstance(value, str) else value
        if values is not None and not values:
            raise ValueError("an empty list matches nothing; leave the field out to match any value")
        return values


class RouteSetting(BaseModel):
    """One entry of `SPENDWATCH_ROUTES`: what it matches, where it sends, and whether matching goes on."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    match: RouteMatch = Field(default_factory=RouteMatch)
    slack_channel: str | None = Field(None, min_length=1)
    slack_webhook_url: SecretStr | None = None
    pagerduty_routing_key: SecretStr | None = None
    continue_matching: bool = Field(False, alias="continue")

    @field_validator("slack_webhook_url")
    @classmethod
    def _webhook_is_http_url(cls, value: SecretStr | None) -> SecretStr | None:
        return _http_url_secret(value)

    @field_validator("pagerduty_routing_key")
    @classmethod
    def _routing_key_has_32_characters(cls, value: SecretStr | None) -> SecretStr | None:
        return _routing_key(value)


def _http_url_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        parsed = urlparse(value.get_secret_value())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("must be an http(s) URL")  # never echo the value: it is a secret
    return value


def _routing_key(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value()) != 32:
        raise ValueError("a PagerDuty Events v2 integration key has 32 characters")
    return value


class BudgetSetting(BaseModel):
    """One entry of `SPENDWATCH_BUDGETS`: whose spend, over which period, against how much."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget: str | None = Field(None, min_length=1, max_length=200, description="its name; default team[/endpoint]"
                               "[:model]-period")
    team: str = Field(min_length=1)
    endpoint: str | None = Field(None, min_length=1)
    model: str | None = Field(None, min_length=1)
    category: Literal["api_tokens", "inference_serving", "training"] | None = None
    period: Literal["day", "week", "month"]
    amount_usd: float = Field(gt=0, le=1e12)
    thresholds: tuple[int, ...] = (50, 80, 100)
    timezone: str = "UTC"

    @field_validator("thresholds")
    @classmethod
    def _percentages(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if not values or any(not 1 <= v <= 1000 for v in values):
            raise ValueError("one or more percentages, each 1 to 1000")
        return tuple(sorted(set(values)))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}; an IANA name such as Europe/Berlin") from None
        return name

    @property
    def name(self) -> str:
        scope = self.team + (f"/{self.endpoint}" if self.endpoint else "") + (f":{self.model}" if self.model else "") \
            + (f"[{self.category}]" if self.category else "")
        return self.budget or f"{scope}-{self.period}"


class TierPolicySetting(BaseModel):
    """One entry of `SPENDWATCH_TIER_POLICY`: the model tiers a team, or one of its endpoints, may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: str = Field(min_length=1)
    endpoint: str | None = Field(None, min_length=1)
    allow: tuple[str, ...]


Executor = Literal["litellm", "kubernetes", "webhook"]


class ActionSetting(BaseModel):
    """A team's entry in `SPENDWATCH_ACTIONS`: which executors act on its commands, and whether for real."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    executor: tuple[Executor, ...] = Field(min_length=1)
    dry_run: bool = True
    litellm_team_id: str | None = Field(None, min_length=1, description="the team's id in LiteLLM; default its name")
    namespace: str | None = Field(None, min_length=1, description="Kubernetes namespace of its Jobs")
    webhook_url: SecretStr | None = None

    @field_validator("executor", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_is_http_url(cls, value: SecretStr | None) -> SecretStr | None:
        return _http_url_secret(value)


class Settings(BaseSettings):
    """The service's configuration; secrets are `SecretStr` so they never print."""

    model_config = SettingsConfigDict(
        env_prefix="SPENDWATCH_", env_file=".env", extra="ignore", frozen=True
    )

    # Kafka
    kafka_brokers: str | None = Field(None, description="kafka://host1:9092;host2:9092; unset: embedded broker")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    kafka_username: str | None = Field(None, description="SASL user")
    kafka_password: SecretStr | None = Field(None, description="SASL password (secret)")
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle for TLS to the brokers")
    kafka_ssl_certfile: str | None = Field(None, description="client certificate (PEM) for mTLS to the brokers")
    kafka_ssl_keyfile: str | None = Field(None, description="its private key (PEM); default: in the certificate file")
    kafka_ssl_key_password: SecretStr | None = Field(None, description="the private key's password (secret)")
    partitions: int = Field(4, ge=1, le=1024, description="partitions for the topics spendwatch creates")
    app_id: str = Field("spendwatch", description="consumer group and prefix of internal topics")
    store: str = Field("memory://", description="Faust table store: memory:// or rocksdb:// (rocksdict)")
    data_dir: str = Field("var/spendwatch", description="where the table store lives")
    session_timeout_s: float = Field(10.0, gt=0, description="Kafka consumer session timeout")
    fetch_max_wait_ms: int = Field(100, ge=1, le=1500, description="longest a fetch may wait at the broker for data")

    # Topics
    usage_topic: str = Field("ai.token-usage", description="token-usage events, one per LLM call")
    gpu_topic: str = Field("ai.gpu-metrics", description="GPU samples, one per GPU per scrape")
    runs_topic: str = Field("ai.training-runs", description="training-run lifecycle events")
    alerts_topic: str = Field("spendwatch.alerts", description="every alert raised or resolved")
    dead_letter_topic: str = Field("spendwatch.dead-letter", description="rejected input, untouched, with the reason")
    outcomes_topic: str = Field("ai.outcomes", description="business outcomes (a ticket resolved, a document "
                                "summarised) that spend is judged against")

    # Accounting
    window_seconds: int = Field(60, ge=1, le=86400, description="window length")
    windows_kept: int = Field(15, ge=1, le=10000, description="recent windows kept per key (shown at /spend)")
    late_grace_seconds: int = Field(600, ge=0, description="how late an event may come and still count")
    future_tolerance_seconds: int = Field(300, ge=0, description="events further ahead of now are rejected")
    dedup_horizon_seconds: int = Field(86400, ge=0, description="event_id repeats within this are dropped")
    batch_size: int = Field(10_000, ge=1, description="most messages in a micro-batch")
    batch_bytes: int = Field(4_000_000, ge=1, description="most bytes of messages in a micro-batch (one message "
                             "at least)")
    batch_seconds: float = Field(0.2, gt=0, description="longest wait to fill a micro-batch")
    max_event_cost_usd: float = Field(100_000.0, gt=0, le=1e12, description="the most one event may cost; above "
                                      "it the event is dead-lettered out_of_range (keeps every sum finite)")
    gpu_max_interval_s: float = Field(300.0, gt=0, description="cap on the time one GPU sample accounts for")
    max_out_of_order_seconds: float = Field(
        5.0, ge=0, description="how far out of event-time order one partition's events may arrive and still be "
        "applied in order (the watermark trails the slowest partition by this much)")
    idle_source_seconds: float = Field(
        5.0, gt=0, description="an input partition fully read and quiet this long no longer holds the watermark")
    max_message_bytes: int = Field(
        900_000, ge=10_000, le=100_000_000, description="largest message spendwatch produces (deltas, dead letters, "
        "table records); keep it under the brokers' and the producer's request limits")
    max_endpoints_per_team: int = Field(
        1000, ge=1, description="past this many endpoints a team is logged and counted in "
        "spendwatch_teams_over_endpoint_limit; its events are still all counted")
    stuck_seconds: float = Field(120.0, gt=0, description="/healthz fails when an agent makes no progress this long")
    gpu_prices: dict[str, float] = Field(
        default_factory=lambda: {"default": 2.5, "H100": 4.0, "H200": 5.0, "A100": 2.0, "L4": 0.8},
        description="USD per GPU-hour by gpu_type, with 'default'",
    )

    # Detection thresholds (overridable per team / endpoint)
    spike_ratio: float = Field(10.0, gt=1, description="flash spike: window at least this many times expected")
    spike_min_usd: float = Field(1.0, ge=0, description="smallest window spend worth a spike alert")
    spike_min_tokens: float = Field(100_000, ge=0, description="smallest window token count worth a spike alert")
    spike_min_calls: int = Field(1, ge=1, description="fewest calls in a window for a spike alert (on a quiet "
                                 "key the calls must also be more than chance explains)")
    spike_spans: tuple[int, ...] = Field((3, 5, 15), description="quiet keys (under about a call a window) and "
                                         "lumpy ones (a meter's one event a period) are also judged over this many "
                                         "windows together; [] judges one window only")
    budgets: tuple[BudgetSetting, ...] = Field(
        (), description='spend budgets: [{"team": "search", "period": "month", "amount_usd": 10000}]; fields: '
        "budget (name), team, endpoint, model, category (api_tokens, inference_serving, training; default every "
        "dollar), period (day, week, month), amount_usd, thresholds (percent, default "
        "[50, 80, 100]), timezone (default UTC)")
    training_buffer: float = Field(0.5, ge=0, description="contingency over a run's estimate")
    training_ceiling_usd: float = Field(100_000.0, gt=0, description="ceiling for runs without ceiling_usd")
    outcome_period_seconds: int = Field(3600, ge=60, le=7 * 86400, description="cost per outcome is judged over "
                                        "periods this long (UTC-aligned)")
    unit_cost_ratio: float = Field(2.0, gt=1, description="unit_cost_spike: cost per outcome at least this many "
                                   "times its learned level (and more than chance explains)")
    model_tiers: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description='model tiers: {"premium": ["gpt-4o", "claude-*-opus*"], "economy": '
        '["gpt-4o-mini"]}; glob patterns over model names, dated variants in their model\'s tier, the most specific '
        "pattern wins; a model none matches is in tier default")
    tier_policy: tuple[TierPolicySetting, ...] = Field(
        (), description='the tiers a team or endpoint may use: [{"team": "support", "allow": ["economy"]}, '
        '{"team": "support", "endpoint": "escalations", "allow": ["economy", "premium"]}]; no entry: unrestricted')
    gpu_idle_utilization: float = Field(10.0, ge=0, le=100, description="gpu_idle: a run's or serving endpoint's "
                                        "GPUs averaging under this utilization (percent)...")
    gpu_idle_minutes: float = Field(60.0, ge=5, le=7 * 1440, description="... for this many minutes, most of them "
                                    "covered by samples (a scrape gap is not idleness)")
    tier_violation_quiet_seconds: float = Field(3600.0, gt=0, description="a model_tier_violation is resolved "
                                                "once its endpoint has made no call to that model this long")
    thresholds: dict[str, dict[str, float]] = Field(
        default_factory=dict, description='per team or team/endpoint overrides, e.g. {"search": {"spike_ratio": 15}}')

    # Alerting
    slack_webhook_url: SecretStr | None = Field(None, description="Slack incoming webhook (secret)")
    slack_bot_token: SecretStr | None = Field(None, description="or a Slack bot token (secret), with slack_channel")
    slack_channel: str | None = Field(None, description="channel for the bot token (chat.postMessage)")
    slack_signing_secret: SecretStr | None = Field(
        None, description="the Slack app's signing secret (secret): with the bot token, incident messages get "
        "Acknowledge and Silence 4 h buttons, whose clicks Slack posts to /slack/interactions")
    slack_api_url: str = Field("https://slack.com/api/", description="Slack Web API base")
    pagerduty_routing_key: SecretStr | None = Field(None, description="PagerDuty Events v2 integration key (secret)")
    pagerduty_events_url: str = Field("https://events.pagerduty.com/v2/enqueue", description="Events API v2 endpoint")
    pagerduty_min_severity: Severity = Field("critical", description="alerts at or above it page")
    alert_repeat_seconds: int = Field(4 * 3600, ge=60, description="repeat a still-firing alert after this long")
    webhook_url: SecretStr | None = Field(None, description="generic webhook: every alert as JSON in a POST")
    console_alerts: bool | None = Field(None, description="print alerts; default: only when no other sink is set")
    routes: tuple[RouteSetting, ...] = Field(
        (), description="routes tried in order before the settings above, which catch what none matches: "
        '[{"match": {"team": "search"}, "slack_channel": "#search-alerts", "pagerduty_routing_key": "..."}]; '
        "fields: match (team, endpoint, kind, severity), slack_channel, slack_webhook_url, "
        "pagerduty_routing_key, continue")
    delivery_deadline_seconds: float = Field(3600.0, gt=0, description="how long a sink is retried before giving up")
    max_silences: int = Field(1000, ge=1, description="most silences held, expired ones included until removed; "
                              "past it POST /silences answers 409 and a Silence click is refused")
    silence_retention_seconds: float = Field(3600.0, ge=0, description="how long an ended silence stays listed "
                                             "(state expired) before it is removed from the silences topic")

    # Actions (issue "Guardrails")
    actions_topic: str = Field("spendwatch.actions", description="typed commands raised by alerts")
    actions: dict[str, ActionSetting] = Field(
        default_factory=dict, description='per team (or "*" for every team): {"search": {"executor": "litellm", '
        '"dry_run": false}}; executors litellm, kubernetes, webhook (with webhook_url); dry_run defaults to true')
    litellm_url: str | None = Field(None, description="LiteLLM proxy's base URL, for its admin API (/team/block)")
    litellm_master_key: SecretStr | None = Field(None, description="LiteLLM's master key (secret)")
    kubernetes_api_url: str = Field("https://kubernetes.default.svc", description="the Kubernetes API server")
    kubernetes_token: SecretStr | None = Field(None, description="bearer token for it (secret); default: the pod's "
                                               "service account token")
    kubernetes_namespace: str = Field("default", min_length=1, description="where runaway runs' Jobs live, unless "
                                      "the team's action setting names another")
    kubernetes_run_label: str = Field("spendwatch.io/run-id", min_length=1, description="the Job label holding "
                                      "its run_id")
    kubernetes_team_label: str = Field("spendwatch.io/team", min_length=1, description="the Job label holding its "
                                       "team's name: a Job is suspended only when it carries both this and the run "
                                       "label")
    allow_plain_http_executors: bool = Field(False, description="let action executors (LiteLLM, the Kubernetes "
                                             "API, webhooks) use plain http:// URLs; for tests and local stand-ins "
                                             "only: their calls carry keys and tokens")

    # Adapters
    ingest_token: SecretStr | None = Field(None, description="bearer token LiteLLM's generic_api callback sends to "
                                           "POST /ingest/litellm (secret); unset: that path answers 404")
    ingest_max_bytes: int = Field(10_000_000, ge=1000, le=1_000_000_000, description="largest body POST "
                                  "/ingest/litellm takes (413 above it)")
    litellm_endpoint_key: str = Field("endpoint", min_length=1, description="which LiteLLM spend_logs_metadata / "
                                      "requester_metadata entry or request tag (key:value) names the endpoint; "
                                      "else the model group")
    litellm_team_key: str = Field("team", min_length=1, description="which LiteLLM spend_logs_metadata / "
                                  "requester_metadata entry or request tag (key:value) names the team of a call "
                                  "whose key has none")
    litellm_default_team: str | None = Field(None, min_length=1, max_length=256, description="the team of a LiteLLM "
                                             "call whose key and request name none; unset: such a call is "
                                             "dead-lettered")

    otlp_topic: str | None = Field(None, description="the OpenTelemetry Collector kafka exporter's traces topic "
                                   "(its default: otlp_spans); GenAI spans there count as usage. Unset: not read")
    otlp_team_attribute: str = Field("team", min_length=1, description="the span or resource attribute naming "
                                     "a GenAI span's team")
    otlp_endpoint_attribute: str = Field("service.name", min_length=1, description="the span or resource attribute "
                                         "naming its endpoint")
    scrape_team_label: str = Field("namespace", min_length=1, description="spendwatch scrape: the dcgm-exporter "
                                   "label naming a GPU's team (namespace with its Kubernetes pod mapping)")
    scrape_run_label: str = Field("pod", min_length=1, description="spendwatch scrape: the label naming the "
                                  "training run or job (pod, or a job label)")
    scrape_serving_label: str = Field("container", min_length=1, description="spendwatch scrape: the label that "
                                      "tells a serving GPU from a training one")
    scrape_serving_values: tuple[str, ...] = Field(
        ("vllm*", "tgi*", "text-generation-inference*", "triton*", "sglang*", "kserve-container", "*-serving*",
         "*inference*"), description="spendwatch scrape: glob patterns of that label's values that mean serving; "
        "[] counts every GPU as a training run's")
    scrape_endpoint_label: str = Field("pod", min_length=1, description="spendwatch scrape: the label naming a "
                                       "serving GPU's endpoint (a pod name less its Deployment's suffixes)")

    # HTTP
    http_host: str = Field("127.0.0.1", description="address the HTTP API binds to")
    http_port: int = Field(6066, ge=1, le=65535, description="the worker's HTTP port")
    public_url: str | None = Field(None, description="how others reach this worker's HTTP API (links in alerts, "
                                   "routing between workers); default http://host:port")
    http_token: SecretStr | None = Field(None, description="bearer token the HTTP API asks for (except /healthz "
                                         "and /metrics), and workers send each other (secret); unset: the API is "
                                         "read-only (POST and DELETE answer 403)")
    http_allow_open: bool = Field(False, description="serve SPENDWATCH_HTTP_HOST on an address other than loopback "
                                  "with no SPENDWATCH_HTTP_TOKEN (anyone who reaches the port reads every team's "
                                  "spend); without it such a worker refuses to start")
    http_max_in_flight: int = Field(64, ge=1, le=100_000, description="HTTP requests one worker serves at once "
                                    "(/healthz and /metrics aside); past it 429 with Retry-After")
    log_format: Literal["text", "json"] = Field("text", description="text, or json: one object a line")

    @field_validator("spike_spans")
    @classmethod
    def _spans_are_longer_than_a_window(cls, spans: tuple[int, ...]) -> tuple[int, ...]:
        if any(windows < 2 or windows > 60 for windows in spans):
            raise ValueError("each span is 2 to 60 windows")
        return tuple(sorted(set(spans)))

    @field_validator("gpu_prices")
    @classmethod
    def _prices_have_default(cls, prices: dict[str, float]) -> dict[str, float]:
        if "default" not in prices:
            raise ValueError("needs a 'default' entry")
        if any(p < 0 for p in prices.values()):
            raise ValueError("prices must be >= 0")
        return prices

    @field_validator("thresholds")
    @classmethod
    def _known_thresholds(cls, overrides: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for scope, values in overrides.items():
            unknown = set(values) - set(THRESHOLD_NAMES)
            if unknown:
                raise ValueError(f"{scope!r} sets unknown thresholds {sorted(unknown)}; known: {THRESHOLD_NAMES}")
        return overrides

    @field_validator("slack_webhook_url", "webhook_url")
    @classmethod
    def _is_http_url(cls, value: SecretStr | None) -> SecretStr | None:
        return _http_url_secret(value)

    @field_validator("slack_api_url", "pagerduty_events_url")
    @classmethod
    def _is_endpoint(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("pagerduty_routing_key")
    @classmethod
    def _routing_key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        return _routing_key(value)

    @model_validator(mode="after")
    def _executors_have_what_they_need(self) -> Settings:
        for team, action in self.actions.items():
            if "litellm" in action.executor and (not self.litellm_url or self.litellm_master_key is None):
                raise ValueError(f"SPENDWATCH_ACTIONS[{team!r}] uses litellm, which needs SPENDWATCH_LITELLM_URL "
                                 "and SPENDWATCH_LITELLM_MASTER_KEY")
            if "webhook" in action.executor and action.webhook_url is None:
                raise ValueError(f"SPENDWATCH_ACTIONS[{team!r}] uses webhook, which needs its webhook_url")
            self._executor_urls_are_https(team, action)
        return self

    def _executor_urls_are_https(self, team: str, action: ActionSetting) -> None:
        """Executors carry keys and tokens and act on other systems: https, unless plain http is allowed."""
        if self.allow_plain_http_executors:
            return
        urls = {"litellm": ("SPENDWATCH_LITELLM_URL", self.litellm_url),
                "kubernetes": ("SPENDWATCH_KUBERNETES_API_URL", self.kubernetes_api_url),
                "webhook": (f"SPENDWATCH_ACTIONS[{team!r}].webhook_url",
                            action.webhook_url.get_secret_value() if action.webhook_url is not None else None)}
        for executor in action.executor:
            name, url = urls[executor]
            if url is not None and urlparse(url).scheme != "https":  # never echo the URL: it may hold a token
                raise ValueError(f"{name} (used by SPENDWATCH_ACTIONS[{team!r}]) must be an https URL; plain http "
                                 "only with SPENDWATCH_ALLOW_PLAIN_HTTP_EXECUTORS=true (tests, local stand-ins)")

    def action_setting(self, team: str) -> ActionSetting | None:
        return self.actions.get(team) or self.actions.get("*")

    @field_validator("budgets")
    @classmethod
    def _budget_names_are_unique(cls, budgets: tuple[BudgetSetting, ...]) -> tuple[BudgetSetting, ...]:
        names = [budget.name for budget in budgets]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"two budgets are named {repeated[0]!r}; give each its own 'budget' name")
        return budgets

    @model_validator(mode="after")
    def _policy_names_known_tiers(self) -> Settings:
        known = set(self.model_tiers) | {"default"}
        for at, entry in enumerate(self.tier_policy):
            unknown = sorted(set(entry.allow) - known)
            if unknown:
                raise ValueError(f"SPENDWATCH_TIER_POLICY[{at}] allows tier {unknown[0]!r}, which "
                                 f"SPENDWATCH_MODEL_TIERS does not define (tiers: {', '.join(sorted(known))})")
        scopes = [(entry.team, entry.endpoint) for entry in self.tier_policy]
        if len(set(scopes)) != len(scopes):
            raise ValueError("SPENDWATCH_TIER_POLICY names one team (and endpoint) twice")
        return self

    @model_validator(mode="after")
    def _bot_token_needs_channel(self) -> Settings:
        if self.slack_bot_token is not None and not self.slack_channel:
            raise ValueError("SPENDWATCH_SLACK_BOT_TOKEN needs SPENDWATCH_SLACK_CHANNEL")
        for at, route in enumerate(self.routes):
            if route.slack_channel is not None and self.slack_bot_token is None:
                raise ValueError(f"SPENDWATCH_ROUTES[{at}] ({route_name(route)}) names slack_channel "
                                 f"{route.slack_channel!r}, which needs SPENDWATCH_SLACK_BOT_TOKEN")
        return self

    def threshold(self, name: str, team: str, endpoint: str | None = None) -> float:
        """The threshold in force for a team (and endpoint): endpoint override, team override, global."""
        if name not in THRESHOLD_NAMES:
            raise KeyError(name)
        for scope in (f"{team}/{endpoint}" if endpoint else None, team):
            if scope and name in self.thresholds.get(scope, {}):
                return float(self.thresholds[scope][name])
        return float(getattr(self, name))

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    def printable(self) -> dict[str, Any]:
        """The configuration as a dict safe to log: secrets masked."""
        return orjson.loads(self.model_dump_json())


def route_name(route: RouteSetting) -> str:
    """A route as a person recognises it in an error: what it matches (never a secret)."""
    taken = [f"{name}={','.join(values)}" for name in MATCHABLE
             if (values := getattr(route.match, name)) is not None]
    return "match " + (" ".join(taken) if taken else "everything")


def setting_name(location: tuple[int | str, ...]) -> str:
    """`("routes", 2, "match", "tem")` -> `SPENDWATCH_ROUTES[2].match.tem`: the variable, then the place in it."""
    if not location:
        return "settings"
    name = f"SPENDWATCH_{str(location[0]).upper()}"
    for part in location[1:]:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1: only this machine can reach an address like these."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def require_guarded_http(settings: Settings) -> None:
    """A worker's start: no serving an address others can reach with no token, unless told so.

    Checked where a worker starts rather than on every load: the same image runs `spendwatch
    simulate` and `produce`, which serve nothing."""
    if settings.http_token is None and not settings.http_allow_open and not is_loopback(settings.http_host):
        raise SettingsError(f"invalid settings: SPENDWATCH_HTTP_HOST={settings.http_host!r} is not a loopback "
                            "address, and with no SPENDWATCH_HTTP_TOKEN anyone who reaches it reads every team's "
                            "spend: set SPENDWATCH_HTTP_TOKEN, or SPENDWATCH_HTTP_ALLOW_OPEN=true if that is wanted")


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; a bad value raises `SettingsError` naming the variable (never a secret)."""
    try:
        return Settings(**overrides)
    except PydanticSettingsError as exc:
        # Raised for JSON settings that do not parse; its text names the field, never the value.
        field_name = str(exc).split('"')[1] if '"' in str(exc) else "settings"
        raise SettingsError(f"invalid settings: SPENDWATCH_{field_name.upper()}: not valid JSON") from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            problems.append(f"{setting_name(error['loc'])}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def env_example() -> str:
    """Every setting with its default and meaning, as `deploy/.env.example` holds them."""
    lines = ["# spendwatch settings: every one, with its default. Secrets belong in your secret store.", ""]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if default is None:
            value = ""
        elif isinstance(default, (dict, list, tuple)):
            value = "'" + orjson.dumps(default).decode() + "'"
        elif isinstance(default, bool):
            value = str(default).lower()
        else:
            value = str(default)
        lines.append(f"# {field.description}")
        lines.append(f"{'# ' if default is None else ''}SPENDWATCH_{name.upper()}={value}")
    return "\n".join(lines) + "\n"
