"""How spendwatch reaches Kafka, in one place: bootstrap servers, SASL (PLAIN, SCRAM) and TLS with mTLS.

One SSL context is built from the settings and handed both to Faust (`faust_credentials`) and
to every aiokafka client spendwatch runs itself (`aiokafka_options`: the simulator, `produce`,
the changelog probe), so they can never disagree.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

import faust

from streams.errors import SettingsError

if TYPE_CHECKING:
    from streams.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL: the CA to trust, and our own certificate for mTLS."""
    if "SSL" not in settings.kafka_security_protocol:
        return None
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_ssl_certfile:
        password = settings.kafka_ssl_key_password.get_secret_value() if settings.kafka_ssl_key_password else None
        try:
            context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile, password)
        except (OSError, ssl.SSLError) as exc:
            # Never the password; the paths are not secret.
            raise SettingsError(f"invalid settings: SPENDWATCH_KAFKA_SSL_CERTFILE/KEYFILE: cannot load the client "
                                f"certificate ({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc.args[-1]})"
                                ) from None
    return context


def _password(settings: Settings) -> str:
    return settings.kafka_password.get_secret_value() if settings.kafka_password else ""


def faust_credentials(settings: Settings) -> Any:
    """Faust's `broker_credentials`, or None for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol.startswith("SASL"):
        mechanism = settings.kafka_sasl_mechanism or "PLAIN"
        if mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            return faust.SASLCredentials(username=settings.kafka_username, password=_password(settings),
                                         mechanism=mechanism, ssl_context=context)
        return faust.SASLCredentials(username=settings.kafka_username, password=_password(settings),
                                     ssl_context=context)
    return faust.SSLCredentials(context)


def aiokafka_options(settings: Settings | None) -> dict[str, Any]:
    """The same, as keyword arguments for aiokafka's clients."""
    if settings is None or settings.kafka_security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_username
        options["sasl_plain_password"] = _password(settings) or None
    return options


def bootstrap_servers(brokers: str) -> str:
    """`kafka://h1:9092;h2:9092` (Faust's spelling) or `h1:9092,h2:9092` as aiokafka wants it."""
    hosts = []
    for part in brokers.replace(";", ",").split(","):
        part = part.strip()
        if part:
            hosts.append(part.split("://", 1)[-1])
    return ",".join(hosts)
