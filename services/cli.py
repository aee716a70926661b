"""The ``csm`` command."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn
from pydantic import ValidationError

from services.customer import cli as customer_cli
from services.registry import SERVICES, ServiceEntry
from shared import VERSION, migrations
from shared.auth import mint_token
from shared.broker import EmbeddedBroker
from shared.events.asyncapi import catalog_document
from shared.observability import configure_logging
from shared.process import tune_gc
from shared.roles import Role
from shared.settings import CommonSettings
from shared.settings import var_dir as default_var_dir

app = typer.Typer(help="csm: customer service management.", no_args_is_help=True, add_completion=False)
app.add_typer(customer_cli.app, name="import")

ServiceName = Annotated[str, typer.Argument(help="customer, segmentation, complaints or notify")]


def _entry(name: str) -> ServiceEntry:
    if name not in SERVICES:
        raise typer.BadParameter(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    return SERVICES[name]


ConsumersOption = Annotated[
    int | None,
    typer.Option(
        "--consumers",
        min=1,
        help="Processes that consume the service's events, as one consumer group (PostgreSQL only); "
        "overrides CSM_<SERVICE>_CONSUMER_PROCESSES. The first also runs the API, the outbox relay "
        "and the scheduled workers; each other one runs the consumer alone and answers health, "
        "readiness and metrics on the service's port plus 100 times its number.",
    ),
]


def consumer_processes(name: str, consumers: int | None) -> int:
    """How many processes consume ``name``'s events: ``consumers`` if given, else its setting.

    Refuses, with the reason, a count its database cannot take (SQLite has one writer).
    """
    if consumers is not None:
        os.environ[f"CSM_{name.upper()}_CONSUMER_PROCESSES"] = str(consumers)
    try:
        return _entry(name).settings().consumer_processes
    except ValidationError as refused:
        raise typer.BadParameter(
            "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in refused.errors()),
            param_hint="--consumers",
        ) from None


@app.command()
def up(
    kafka_port: Annotated[int, typer.Option(help="Port of the embedded broker.")] = 9092,
    var_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the SQLite databases, the key store and the logs go (CSM_VAR_DIR); "
            "var/ of the checkout by default. Other commands find them there through CSM_VAR_DIR."
        ),
    ] = None,
    consumers: ConsumersOption = None,
) -> None:
    """Start the whole system on embedded defaults: broker, migrations, four services."""
    from services.supervisor import System

    if var_dir is not None:
        # The services, the migrations and the key store all read it (shared.settings.var_dir).
        os.environ["CSM_VAR_DIR"] = str(var_dir.expanduser().resolve())
    common = CommonSettings()
    configure_logging(common.log_level, common.log_format)
    # Refused before anything starts, if a service's database cannot take them.
    processes = {name: consumer_processes(name, consumers) for name in SERVICES}
    raise typer.Exit(
        System(
            var_dir=default_var_dir(), kafka_port=kafka_port, say=typer.echo, consumer_processes=processes
        ).run()
    )


@app.command()
def serve(
    service: ServiceName,
    port: Annotated[int | None, typer.Option(help="Overrides CSM_<SERVICE>_PORT.")] = None,
    host: Annotated[str | None, typer.Option(help="Overrides CSM_<SERVICE>_HOST.")] = None,
    consumers: ConsumersOption = None,
    consumer_only: Annotated[
        bool,
        typer.Option(
            "--consumer-only",
            help="Run the consumer alone, beside a process of the service that runs the rest "
            "(CSM_<SERVICE>_CONSUMER_ONLY).",
        ),
    ] = False,
) -> None:
    """Run one service (its API, and its relay, consumer and scanners unless run_workers is off)."""
    from services.supervisor import ConsumerProcesses

    entry = _entry(service)
    if consumer_only:
        os.environ[f"CSM_{service.upper()}_CONSUMER_ONLY"] = "true"
    processes = consumer_processes(service, consumers)
    settings = entry.settings()
    configure_logging(settings.common.log_level, settings.common.log_format)
    tune_gc(settings.common.gc_young_threshold)
    port, host = port or settings.port, host or settings.host
    extra = 0 if settings.consumer_only else processes - 1
    with ConsumerProcesses(service, host=host, port=port, count=extra, say=typer.echo) as others:
        uvicorn.run(
            entry.factory,
            factory=True,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    if others.failed:
        raise typer.Exit(1)


@app.command()
def console(
    port: Annotated[int | None, typer.Option(help="Overrides CSM_CONSOLE_PORT.")] = None,
    host: Annotated[str | None, typer.Option(help="Overrides CSM_CONSOLE_HOST.")] = None,
) -> None:
    """Run the console, the service team's web workspace (it calls the four services' APIs)."""
    from services.console.settings import ConsoleSettings

    settings = ConsoleSettings()
    configure_logging(settings.common.log_level)
    uvicorn.run(
        "services.console.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def migrate(
    services: Annotated[list[str] | None, typer.Argument(help="Services to migrate; all if none.")] = None,
) -> None:
    """Bring the services' databases to the latest schema."""
    names = services or list(SERVICES)

    async def run() -> None:
        for name in names:
            await migrations.upgrade(name, _entry(name).settings().database_url)
            typer.echo(f"{name}: migrated")

    asyncio.run(run())


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="The role the token carries.")],
    subject: Annotated[str, typer.Option(help="Who the token speaks for.")] = "local-user",
    hours: Annotated[float, typer.Option(help="Hours until it expires.")] = 12,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="For --role service: what it may do, as <service>:read or <service>:write "
            "(repeat the option); without one, a service token may do nothing."
        ),
    ] = None,
) -> None:
    """Mint a bearer token for local use (signed with CSM_JWT_SECRET)."""
    try:
        typer.echo(
            mint_token(
                CommonSettings(), subject=subject, role=role, ttl=timedelta(hours=hours), scopes=scope or ()
            )
        )
    except ValueError as refused:
        raise typer.BadParameter(str(refused), param_hint="--scope" if scope else "--hours") from None


@app.command()
def asyncapi() -> None:
    """Print the event catalog as an AsyncAPI 3.0 document."""
    common = CommonSettings()
    document = catalog_document(
        version=VERSION, bootstrap=common.kafka_bootstrap, topic_prefix=common.topic_prefix
    )
    typer.echo(json.dumps(document, indent=2))


@app.command()
def topics() -> None:
    """Create every topic the services use (theirs, the dead-letter topics, the epoch) if missing."""
    from shared.bus import Bus
    from shared.events import TOPICS, dead_letter_topic

    async def run() -> None:
        common = CommonSettings().model_copy(update={"kafka_create_topics": True})
        bus = Bus(common, client_id="csm-topics")
        await bus.ensure_topics([*TOPICS.values(), *(dead_letter_topic(name) for name in SERVICES)])
        typer.echo(f"topics ready on {common.kafka_bootstrap}")

    asyncio.run(run())


@app.command()
def broker(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 9092) -> None:
    """Run the embedded broker alone, in the foreground."""
    embedded = EmbeddedBroker(port).start()
    typer.echo(f"broker on {embedded.bootstrap}; Ctrl-C stops it")
    try:
        assert embedded.process is not None
        embedded.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        embedded.stop()


dead_letters = typer.Typer(
    help="What a service's consumer gave up on: list, show, replay.", no_args_is_help=True
)
app.add_typer(dead_letters, name="dead-letters")

ServiceUrl = Annotated[
    str | None,
    typer.Option("--url", help="The service's address; its configured host and port if not given."),
]


def _admin_client(service: str, url: str | None) -> httpx.Client:
    entry = _entry(service)
    if url is None:
        settings = entry.settings()
        url = f"http://{settings.host}:{settings.port}"
    token = mint_token(CommonSettings(), subject="csm-cli", role=Role.admin, ttl=timedelta(minutes=5))
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _answer(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    if response.is_error:
        typer.echo(f"{response.status_code}: {body.get('detail') or body.get('title')}", err=True)
        raise typer.Exit(1)
    return body


@dead_letters.command("list")
def list_dead_letters(
    service: ServiceName,
    url: ServiceUrl = None,
    waiting: Annotated[bool, typer.Option(help="Only those not replayed yet.")] = False,
) -> None:
    """List a service's dead letters, newest first."""
    params: dict[str, str] = {"limit": "200"}
    if waiting:
        params["replayed"] = "false"
    with _admin_client(service, url) as client:
        cursor: str | None = None
        while True:
            page = _answer(
                client.get("/dead-letters", params={**params, **({"cursor": cursor} if cursor else {})})
            )
            for item in page["items"]:
                state = f"replayed {item['replayed_at']}" if item["replayed_at"] else "waiting"
                typer.echo(f"{item['id']}  {item['created_at']}  {item['topic']}  {state}  {item['reason']}")
            cursor = page["next_cursor"]
            if cursor is None:
                return


@dead_letters.command("show")
def show_dead_letter(service: ServiceName, dead_letter_id: str, url: ServiceUrl = None) -> None:
    """Print one dead letter with its record, as JSON."""
    with _admin_client(service, url) as client:
        typer.echo(
            json.dumps(_answer(client.get(f"/dead-letters/{dead_letter_id}")), indent=2, ensure_ascii=False)
        )


@dead_letters.command("replay")
def replay_dead_letter(service: ServiceName, dead_letter_id: str, url: ServiceUrl = None) -> None:
    """Apply a dead letter again; it takes effect once, and says why if it still fails."""
    with _admin_client(service, url) as client:
        result = _answer(client.post(f"/dead-letters/{dead_letter_id}/replay"))
    typer.echo(f"{result['id']}: {result['outcome']}")


rates = typer.Typer(
    help="The exchange rates purchases in other currencies are converted at (the customer service).",
    no_args_is_help=True,
)
app.add_typer(rates, name="rates")


@rates.command("add")
def add_rate(
    currency: Annotated[str, typer.Argument(help="The currency, e.g. USD.")],
    rate: Annotated[str, typer.Argument(help="Units of the reporting currency one unit is worth.")],
    effective_from: Annotated[
        str, typer.Option("--from", help="From this moment (ISO 8601, with its offset) on.")
    ],
    url: ServiceUrl = None,
) -> None:
    """State a rate from a moment on; the same rate again changes nothing."""
    with _admin_client("customer", url) as client:
        stated = _answer(
            client.post(
                "/exchange-rates",
                json={"currency": currency.upper(), "rate": rate, "effective_from": effective_from},
            )
        )
    typer.echo(
        f"{stated['currency']} = {stated['rate']} {stated['reporting_currency']} "
        f"from {stated['effective_from']}"
    )


@rates.command("list")
def list_rates(
    currency: Annotated[str | None, typer.Option(help="Only this currency's rates.")] = None,
    url: ServiceUrl = None,
) -> None:
    """List the rates, newest first."""
    params = {"limit": "200", **({"currency": currency.upper()} if currency else {})}
    with _admin_client("customer", url) as client:
        cursor: str | None = None
        while True:
            page = _answer(
                client.get("/exchange-rates", params={**params, **({"cursor": cursor} if cursor else {})})
            )
            for item in page["items"]:
                typer.echo(
                    f"{item['currency']}  {item['rate']} {item['reporting_currency']}  "
                    f"from {item['effective_from']}  by {item['stated_by']}"
                )
            cursor = page["next_cursor"]
            if cursor is None:
                return


segmentation = typer.Typer(
    help="Segmentation's batch and figures, as of an analysis date if you choose one.", no_args_is_help=True
)
app.add_typer(segmentation, name="segmentation")

AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="The analysis date: an ISO 8601 moment with its offset (2024-12-31T18:00:00+08:00), "
        "or a day (2024-12-31), meaning the end of that day in UTC.",
    ),
]


def _as_of(text: str | None) -> dict[str, str]:
    """The ``as_of`` query parameter: a moment as given, or the last instant of a day, in UTC."""
    if text is None:
        return {}
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return {"as_of": text}
    return {"as_of": datetime.combine(day, time.max, tzinfo=UTC).isoformat()}


@segmentation.command("recompute")
def recompute(as_of: AsOfOption = None, url: ServiceUrl = None) -> None:
    """Run the batch now; with --as-of, pin that analysis date.

    Every later batch (the schedule's too) and every live assessment keep the date until
    `csm segmentation live` clears it."""
    with _admin_client("segmentation", url) as client:
        outcome = _answer(client.post("/cut-points/recompute", params=_as_of(as_of)))
    typer.echo(json.dumps(outcome, indent=2, ensure_ascii=False))


@segmentation.command("live")
def live(url: ServiceUrl = None) -> None:
    """Clear the pinned analysis date: figure everything as of now again, at once."""
    with _admin_client("segmentation", url) as client:
        outcome = _answer(client.delete("/cut-points/analysis-date"))
    typer.echo(json.dumps(outcome, indent=2, ensure_ascii=False))


@segmentation.command("figures")
def figures(as_of: AsOfOption = None, url: ServiceUrl = None) -> None:
    """Print the distribution (tiers, segments, ABC, stages, risk) and the Pareto figures, as JSON.

    With --as-of they are computed as of that moment and nothing is written."""
    with _admin_client("segmentation", url) as client:
        shown = {
            "distribution": _answer(client.get("/analytics/distribution", params=_as_of(as_of))),
            "pareto": _answer(client.get("/analytics/pareto", params={**_as_of(as_of), "points": "10"})),
        }
    typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
