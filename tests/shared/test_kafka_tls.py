"""The bus and the services' consumers connect over TLS and mutual TLS, on the real broker.

tansu 0.6 has no TLS listener of its own (its ``--cert``/``--key`` options cannot be given together,
and ``--cert`` alone leaves the listener plain), so the broker here sits behind a TLS terminator:
stdlib ``ssl`` on the client's side, the broker's plain port behind it, and the broker advertising the
terminator's address, so that every connection a client makes (bootstrap, partition leaders, the
group coordinator) is a TLS one. What is tested is csm's side: the CA it trusts, the name it checks,
the certificate it presents.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from shared.broker import EmbeddedBroker, free_port
from shared.bus import Bus, Outgoing
from shared.kafka_security import security_options
from shared.settings import CommonSettings
from tests.harness import Databases, Stack, auth, common_settings_for_tests, eventually
from tests.shared.certificates import Certificates, make_certificates


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


class BrokerBehind(EmbeddedBroker):
    """A broker that tells clients to reach it at another port: the terminator's."""

    def __init__(self, advertised_port: int) -> None:
        super().__init__()
        self.advertised_port = advertised_port

    def command(self) -> list[str]:
        command = super().command()
        command[command.index("--advertised-listener-url") + 1] = f"tcp://127.0.0.1:{self.advertised_port}"
        return command


class TlsTerminator:
    """Takes TLS connections on ``port`` and carries their bytes to and from the broker's plain port."""

    def __init__(self, context: ssl.SSLContext, *, port: int, upstream_port: int) -> None:
        self.context = context
        self.port = port
        self.upstream_port = upstream_port
        # The common name of each client certificate presented ("" for none), per connection.
        self.clients: list[str] = []
        self._pipes: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connected, "127.0.0.1", self.port, ssl=self.context)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        certificate = writer.get_extra_info("peercert") or {}
        names = [value for rdn in certificate.get("subject", ()) for key, value in rdn if key == "commonName"]
        self.clients.append(names[0] if names else "")
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65_536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            sink.close()


def server_context(
    certificates: Certificates, *, elsewhere: bool = False, client_ca: bool = False
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if elsewhere:
        context.load_cert_chain(certificates.elsewhere_cert, certificates.elsewhere_key)
    else:
        context.load_cert_chain(certificates.server_cert, certificates.server_key)
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(certificates.ca)
    return context


@contextlib.asynccontextmanager
async def tls_broker(context: ssl.SSLContext) -> AsyncIterator[TlsTerminator]:
    terminator_port = free_port()
    with BrokerBehind(terminator_port) as broker:
        terminator = TlsTerminator(context, port=terminator_port, upstream_port=broker.port)
        await terminator.start()
        try:
            yield terminator
        finally:
            await terminator.stop()


def tls_settings(terminator: TlsTerminator, **security: Any) -> CommonSettings:
    base = common_settings_for_tests(f"127.0.0.1:{terminator.port}", "tls.")
    return CommonSettings(**{**base.model_dump(), "kafka_security_protocol": "SSL", **security})


async def connects(settings: CommonSettings) -> bool:
    """Whether an admin client made with ``settings``' security options gets an answer from the broker."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5_000, **security_options(settings)
    )
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except KafkaConnectionError:
        return False
    finally:
        await admin.close()


async def bus_works(settings: CommonSettings) -> None:
    """Start a bus (admin, producer and epoch reader), have it create its topic and take a record."""
    bus = Bus(settings, client_id="tls-test")
    try:
        async with asyncio.timeout(30):
            await bus.start(["csm.customer"])
        assert bus.epoch is not None
        assert await bus.publish([Outgoing("csm.customer", b"k", b"over tls")], epoch=bus.epoch) == [True]
    finally:
        await bus.stop()


async def test_the_bus_works_over_tls_trusting_only_the_configured_ca(certificates: Certificates) -> None:
    async with tls_broker(server_context(certificates)) as terminator:
        await bus_works(tls_settings(terminator, kafka_ssl_cafile=certificates.ca))
        assert terminator.clients, "the bus went through the terminator"

        assert not await connects(tls_settings(terminator, kafka_ssl_cafile=certificates.other_ca))
        assert not await connects(tls_settings(terminator)), "the system's trust store does not know the CA"
        plaintext = common_settings_for_tests(f"127.0.0.1:{terminator.port}", "tls.")
        assert not await connects(plaintext), "the endpoint takes nothing but TLS"


async def test_the_brokers_name_is_checked_unless_that_is_turned_off(certificates: Certificates) -> None:
    async with tls_broker(server_context(certificates, elsewhere=True)) as terminator:
        # Signed by the trusted CA, but for broker.elsewhere.test, not for 127.0.0.1.
        assert not await connects(tls_settings(terminator, kafka_ssl_cafile=certificates.ca))
        await bus_works(
            tls_settings(terminator, kafka_ssl_cafile=certificates.ca, kafka_ssl_check_hostname=False)
        )


async def test_mutual_tls_presents_the_services_certificate(certificates: Certificates) -> None:
    async with tls_broker(server_context(certificates, client_ca=True)) as terminator:
        mutual = tls_settings(
            terminator,
            kafka_ssl_cafile=certificates.ca,
            kafka_ssl_certfile=certificates.client_cert,
            kafka_ssl_keyfile=certificates.client_key,
        )
        await bus_works(mutual)
        assert set(terminator.clients) == {"csm-customer"}

        assert not await connects(tls_settings(terminator, kafka_ssl_cafile=certificates.ca))


class TlsStack(Stack):
    """Services whose every Kafka client goes through the terminator with a client certificate."""

    def __init__(self, terminator: TlsTerminator, databases: Databases, certificates: Certificates) -> None:
        super().__init__(f"127.0.0.1:{terminator.port}", databases)
        self.certificates = certificates

    @property
    def common(self) -> CommonSettings:
        return CommonSettings(
            **{
                **super().common.model_dump(),
                "kafka_security_protocol": "SSL",
                "kafka_ssl_cafile": self.certificates.ca,
                "kafka_ssl_certfile": self.certificates.client_cert,
                "kafka_ssl_keyfile": self.certificates.client_key,
            }
        )


@pytest.mark.e2e
async def test_services_publish_and_consume_over_mutual_tls(
    certificates: Certificates, databases: Databases
) -> None:
    async with tls_broker(server_context(certificates, client_ca=True)) as terminator:
        stack = TlsStack(terminator, databases, certificates)
        try:
            customer = await stack.start("customer")
            segmentation = await stack.start("segmentation")
            registered = await customer.client.post("/customers", json={"name": "Li Na"}, headers=auth())
            assert registered.status_code == 201, registered.text
            customer_id = registered.json()["id"]

            # The customer's relay published the registration and segmentation's consumer (its
            # group, its offsets) read it: both over mutual TLS.
            async def segmented() -> None:
                found = await segmentation.client.get(f"/segments/{customer_id}", headers=auth())
                assert found.status_code == 200, found.text

            await eventually(segmented)
        finally:
            await stack.close()
        assert terminator.clients and set(terminator.clients) == {"csm-customer"}
