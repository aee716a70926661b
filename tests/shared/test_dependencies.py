"""The shared dependencies run on the event loop: FastAPI runs a dependency that is a plain function in
a worker thread, a hop per request that costs more than the dependency itself."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.params import Depends
from fastapi.routing import APIRoute

from services.complaints import api as complaints_api
from services.registry import SERVICES
from shared import auth, deps
from tests.harness import api_routes


def _runs_on_the_loop(call: Any) -> bool:
    function = call if inspect.isfunction(call) or inspect.ismethod(call) else type(call).__call__
    return not inspect.isclass(call) and (
        inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)
    )


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


ALIASES = {
    "RuntimeDep": deps.RuntimeDep,
    "SessionDep": deps.SessionDep,
    "ReadSessionDep": deps.ReadSessionDep,
    "ClockDep": deps.ClockDep,
    "CurrentUser": auth.CurrentUser,
    "Agent": auth.Agent,
    "AgentOrService": auth.AgentOrService,
}


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_a_shared_dependency_is_a_coroutine(name: str) -> None:
    alias: Any = ALIASES[name]
    [depends] = [marker for marker in get_args(alias)[1:] if isinstance(marker, Depends)]
    assert _runs_on_the_loop(depends.dependency), f"{name} would run in a worker thread"


def test_taking_a_complaint_runs_no_dependency_in_a_worker_thread() -> None:
    [intake] = [
        route
        for route in complaints_api.router.routes
        if isinstance(route, APIRoute) and route.path == "/complaints" and "POST" in (route.methods or ())
    ]
    in_threads = [
        getattr(call, "__qualname__", repr(call))
        for call in _calls(intake.dependant)
        if not _runs_on_the_loop(call)
    ]
    assert in_threads == []


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_no_endpoint_runs_a_dependency_in_a_worker_thread(
    service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CSM_VAR_DIR", str(tmp_path))
    module, _, factory = SERVICES[service].factory.partition(":")
    app = getattr(importlib.import_module(module), factory)()
    routes = list(api_routes(app.routes))
    assert len(routes) > 10
    in_threads = sorted(
        {
            f"{getattr(call, '__qualname__', repr(call))} ({sorted(route.methods or ())[0]} {route.path})"
            for route in routes
            for call in _calls(route.dependant)
            if not _runs_on_the_loop(call)
        }
    )
    assert in_threads == []


def test_the_check_tells_a_plain_function_from_a_coroutine() -> None:
    def plain() -> None:
        return None

    async def coroutine() -> None:
        return None

    class Marker:
        pass

    assert not _runs_on_the_loop(plain)
    assert not _runs_on_the_loop(Marker)
    assert _runs_on_the_loop(coroutine)
