"""Settings validation (names the variable, never a secret) and the price catalog."""

from __future__ import annotations

import pytest

from streams.errors import SettingsError
from streams.input.pricing import estimate_cost
from streams.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(__import__("os").environ):
        if name.startswith("SPENDWATCH_"):
            monkeypatch.delenv(name)


def test_defaults_follow_the_contract():
    settings = load_settings()
    assert (settings.usage_topic, settings.gpu_topic, settings.runs_topic) == (
        "ai.token-usage", "ai.gpu-metrics", "ai.training-runs")
    assert (settings.alerts_topic, settings.dead_letter_topic) == ("spendwatch.alerts", "spendwatch.dead-letter")
    assert (settings.window_seconds, settings.spike_ratio, settings.training_buffer) == (60, 10.0, 0.5)
    assert settings.pagerduty_events_url == "https://events.pagerduty.com/v2/enqueue"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.alert_repeat_seconds == 4 * 3600 and settings.pagerduty_min_severity == "critical"
    assert settings.kafka_brokers is None and settings.http_host == "127.0.0.1"


def test_a_bad_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("SPENDWATCH_WINDOW_SECONDS", "soon")
    with pytest.raises(SettingsError, match="SPENDWATCH_WINDOW_SECONDS"):
        load_settings()


def test_secrets_never_reach_errors_or_printed_config(monkeypatch):
    secret = "xoxb-very-secret-token-123"
    monkeypatch.setenv("SPENDWATCH_SLACK_BOT_TOKEN", secret)
    monkeypatch.setenv("SPENDWATCH_KAFKA_PASSWORD", secret)
    routing_key = "R0uT1nGk3y" + "x" * 22  # 32 characters
    monkeypatch.setenv("SPENDWATCH_PAGERDUTY_ROUTING_KEY", routing_key)
    with pytest.raises(SettingsError) as info:  # a bot token without a channel
        load_settings()
    assert secret not in str(info.value)
    monkeypatch.setenv("SPENDWATCH_SLACK_CHANNEL", "#spend")
    settings = load_settings()
    for shown in (repr(settings), str(settings.printable())):
        assert secret not in shown and routing_key not in shown
    monkeypatch.setenv("SPENDWATCH_KAFKA_PASSWORD", "[" + secret)  # still a string: fine
    monkeypatch.setenv("SPENDWATCH_GPU_PRICES", secret)  # not JSON: the error must not echo it
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "SPENDWATCH_GPU_PRICES" in str(info.value) and secret not in str(info.value)


def test_thresholds_per_team_and_endpoint(monkeypatch):
    monkeypatch.setenv("SPENDWATCH_THRESHOLDS", '{"search": {"spike_ratio": 15}, "search/chat": {"spike_ratio": 20}}')
    settings = load_settings()
    assert settings.threshold("spike_ratio", "search", "chat") == 20
    assert settings.threshold("spike_ratio", "search", "batch") == 15
    assert settings.threshold("spike_ratio", "ads", "chat") == 10
    monkeypatch.setenv("SPENDWATCH_THRESHOLDS", '{"search": {"spike_ration": 15}}')
    with pytest.raises(SettingsError, match="SPENDWATCH_THRESHOLDS"):
        load_settings()


def test_catalog_prices_known_models_and_admits_unknown_ones():
    cost = estimate_cost("gpt-4o", 1_000_000, 1_000_000)
    assert cost == pytest.approx(2.5 + 10.0)
    assert estimate_cost("in-house-llm-v3", 10, 10) is None


def test_malformed_alerting_settings_stop_start_up_without_echoing_them(monkeypatch):
    monkeypatch.setenv("SPENDWATCH_PAGERDUTY_ROUTING_KEY", "short-secret-key")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "SPENDWATCH_PAGERDUTY_ROUTING_KEY" in str(info.value) and "short-secret-key" not in str(info.value)
    monkeypatch.delenv("SPENDWATCH_PAGERDUTY_ROUTING_KEY")
    monkeypatch.setenv("SPENDWATCH_SLACK_WEBHOOK_URL", "hooks.slack.com/services/T0/B0/secretpath")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "SPENDWATCH_SLACK_WEBHOOK_URL" in str(info.value) and "secretpath" not in str(info.value)


def test_sasl_and_tls_reach_faust_and_our_producers(monkeypatch, tmp_path):
    import faust

    from streams.kafka_client import aiokafka_options as producer_options
    from streams.worker.app import faust_options

    monkeypatch.setenv("SPENDWATCH_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SPENDWATCH_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("SPENDWATCH_KAFKA_USERNAME", "spendwatch")
    monkeypatch.setenv("SPENDWATCH_KAFKA_PASSWORD", "kafka-secret-pw")
    settings = load_settings()
    credentials = faust_options(settings, "kafka://b:9093")["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.mechanism.value) == ("spendwatch", "SCRAM-SHA-512")
    assert credentials.ssl_context is not None and "kafka-secret-pw" not in repr(credentials)
    options = producer_options(settings)
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "spendwatch" and options["ssl_context"] is not None
    monkeypatch.setenv("SPENDWATCH_KAFKA_SECURITY_PROTOCOL", "SSL")
    assert isinstance(faust_options(load_settings(), "kafka://b:9093")["broker_credentials"], faust.SSLCredentials)


def test_mutual_tls_loads_the_client_certificate_and_a_bad_one_is_named_without_its_password(monkeypatch, tmp_path):
    import shutil
    import ssl
    import subprocess

    from streams.kafka_client import aiokafka_options, faust_credentials

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=spendwatch", "-passout", "pass:key-secret-pw"],
                   check=True, capture_output=True)
    monkeypatch.setenv("SPENDWATCH_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("SPENDWATCH_KAFKA_SSL_CERTFILE", str(cert))
    monkeypatch.setenv("SPENDWATCH_KAFKA_SSL_KEYFILE", str(key))
    monkeypatch.setenv("SPENDWATCH_KAFKA_SSL_KEY_PASSWORD", "key-secret-pw")
    settings = load_settings()
    assert isinstance(aiokafka_options(settings)["ssl_context"], ssl.SSLContext)
    assert faust_credentials(settings).context is not None
    assert "key-secret-pw" not in str(settings.printable())
    monkeypatch.setenv("SPENDWATCH_KAFKA_SSL_KEY_PASSWORD", "wrong-pw")
    with pytest.raises(SettingsError, match="SPENDWATCH_KAFKA_SSL_CERTFILE") as info:
        aiokafka_options(load_settings())
    assert "wrong-pw" not in str(info.value)


@pytest.mark.parametrize(("budgets", "says"), [
    ('[{"team": "a", "period": "month", "amount_usd": 10, "timezone": "Mars/Olympus"}]', "unknown time zone"),
    ('[{"team": "a", "period": "fortnight", "amount_usd": 10}]', "SPENDWATCH_BUDGETS[0].period"),
    ('[{"team": "a", "period": "day", "amount_usd": 0}]', "SPENDWATCH_BUDGETS[0].amount_usd"),
    ('[{"team": "a", "period": "day", "amount_usd": 5, "thresholds": []}]', "one or more percentages"),
    ('[{"team": "a", "period": "day", "amount_usd": 5}, {"team": "a", "period": "day", "amount_usd": 9}]',
     "two budgets are named 'a-day'"),
])
def test_a_bad_budget_stops_start_up_naming_it(monkeypatch, tmp_path, budgets, says):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPENDWATCH_BUDGETS", budgets)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert says in str(info.value)
