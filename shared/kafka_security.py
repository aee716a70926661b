"""How every Kafka client csm builds authenticates and encrypts: one place turns the settings into
the keyword arguments of ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and ``AIOKafkaAdminClient``.

The settings are checked when they load (``CommonSettings``); here they are only translated. The
TLS context is made afresh for each client, so a client made after a certificate file was renewed
on disk uses the new one. The result holds the SASL password: pass it on, never log it.
"""

from __future__ import annotations

from typing import Any

from aiokafka.helpers import create_ssl_context

from shared.settings import CommonSettings


def security_options(settings: CommonSettings) -> dict[str, Any]:
    """The aiokafka keyword arguments for ``settings``' security protocol, SASL and TLS."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        if settings.kafka_sasl_username is None or settings.kafka_sasl_password is None:
            raise ValueError(f"{protocol} needs CSM_KAFKA_SASL_USERNAME and CSM_KAFKA_SASL_PASSWORD")
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if protocol in ("SSL", "SASL_SSL"):
        key_password = settings.kafka_ssl_key_password
        context = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
            # Never None: OpenSSL would then ask a terminal for an encrypted key's passphrase.
            password=key_password.get_secret_value() if key_password else "",
        )
        # The chain is verified either way; only matching the broker's name can be turned off.
        context.check_hostname = settings.kafka_ssl_check_hostname
        options["ssl_context"] = context
    return options
