"""The four services, called with the signed-in person's own token: every rule and role stays there."""

from __future__ import annotations

from typing import Any, Literal

import httpx

from services.console.session import Person
from services.console.settings import ConsoleSettings

Service = Literal["customer", "segmentation", "complaints", "notify"]


class ServiceRefused(Exception):
    """A service said no (4xx): its problem's detail is shown to the person as it is."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class ServiceUnreachable(Exception):
    """A service did not answer at all: the page says which, rather than failing blindly."""

    def __init__(self, service: Service) -> None:
        super().__init__(service)
        self.service = service


class TokenRefused(ServiceRefused):
    """A service no longer accepts the person's token (401): they sign in again."""


class Backends:
    def __init__(self, settings: ConsoleSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.urls: dict[Service, str] = {
            "customer": settings.customer_url,
            "segmentation": settings.segmentation_url,
            "complaints": settings.complaints_url,
            "notify": settings.notify_url,
        }
        self.client = httpx.AsyncClient(timeout=15, transport=transport)

    async def close(self) -> None:
        await self.client.aclose()

    async def get(self, person: Person, service: Service, path: str, **params: Any) -> Any:
        query = {key: value for key, value in params.items() if value not in (None, "")}
        return await self._call(person, "GET", service, path, params=query)

    async def picture(self, person: Person, service: Service, path: str, **params: Any) -> tuple[bytes, str]:
        """A chart a service draws: its bytes and media type."""
        response = await self._send(person, "GET", service, path, params=params)
        return response.content, response.headers.get("content-type", "application/octet-stream")

    async def post(self, person: Person, service: Service, path: str, body: Any = None) -> Any:
        return await self._call(person, "POST", service, path, json=body)

    async def put(self, person: Person, service: Service, path: str, body: Any) -> Any:
        return await self._call(person, "PUT", service, path, json=body)

    async def patch(self, person: Person, service: Service, path: str, body: Any) -> Any:
        return await self._call(person, "PATCH", service, path, json=body)

    async def delete(self, person: Person, service: Service, path: str) -> Any:
        return await self._call(person, "DELETE", service, path)

    async def _call(self, person: Person, method: str, service: Service, path: str, **sent: Any) -> Any:
        response = await self._send(person, method, service, path, **sent)
        return response.json() if response.content else None

    async def _send(
        self, person: Person, method: str, service: Service, path: str, **sent: Any
    ) -> httpx.Response:
        try:
            response = await self.client.request(
                method,
                self.urls[service].rstrip("/") + path,
                headers={"Authorization": f"Bearer {person.token}"},
                **sent,
            )
        except httpx.TransportError:
            raise ServiceUnreachable(service) from None
        if response.status_code == 401:
            raise TokenRefused(401, _detail(response))
        if response.is_error:
            raise ServiceRefused(response.status_code, _detail(response))
        return response


def _detail(response: httpx.Response) -> str:
    try:
        problem = response.json()
    except ValueError:
        return f"{response.status_code} {response.reason_phrase}"
    if isinstance(problem, dict):
        # problem+json: the detail already names each field at fault.
        return str(problem.get("detail") or problem.get("title") or response.reason_phrase)
    return str(problem)
