"""Operator API (docs/api.md#operator-api): `/admin/1/connectors`, `/admin/1/routes`, `/admin/1/prices`.

Guarded by the operator token (`Authorization: Bearer <token>`), checked before anything else.
Connector passwords are write-only: accepted on POST and PUT, never returned. PUT changes only
the fields it carries. The default route and a channel's default price are addressed in paths as
`default`.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta, Struct
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from omnirelay.domain.connectors import SmppConnector, SmsRoute
from omnirelay.domain.errors import NotFound, ValidationFailed
from omnirelay.domain.prices import Price
from omnirelay.http.body import decode
from omnirelay.http.context import Services, json_response, services
from omnirelay.services.connectors import SmsConnectors
from omnirelay.services.prices import PriceBook

Number = Annotated[float, Meta(ge=0)]


class ConnectorIn(Struct, forbid_unknown_fields=True):
    name: str
    host: str
    port: int
    systemId: str
    password: str = ""
    systemType: str = ""
    tls: bool = False
    throughput: Number = 0.0
    window: int = 10
    enquireLinkS: Number = 30.0
    responseTimeoutS: Number = 10.0
    reconnectMinS: Number = 1.0
    reconnectMaxS: Number = 60.0
    destTon: int = 1
    destNpi: int = 1


class ConnectorUpdateIn(Struct, forbid_unknown_fields=True):
    name: str | None = None
    host: str | None = None
    port: int | None = None
    systemId: str | None = None
    password: str | None = None
    systemType: str | None = None
    tls: bool | None = None
    throughput: Number | None = None
    window: int | None = None
    enquireLinkS: Number | None = None
    responseTimeoutS: Number | None = None
    reconnectMinS: Number | None = None
    reconnectMaxS: Number | None = None
    destTon: int | None = None
    destNpi: int | None = None


class ConnectorOut(Struct):
    """A connector as the API shows it: everything but the password."""

    name: str
    host: str
    port: int
    systemId: str
    systemType: str
    tls: bool
    throughput: float
    window: int
    enquireLinkS: float
    responseTimeoutS: float
    reconnectMinS: float
    reconnectMaxS: float
    destTon: int
    destNpi: int


class ConnectorsOut(Struct):
    connectors: list[ConnectorOut]


class RouteIn(Struct, forbid_unknown_fields=True):
    connector: str
    prefix: str = ""


class RouteOut(Struct):
    prefix: str
    connector: str


class RoutesOut(Struct):
    routes: list[RouteOut]


class PriceIn(Struct, forbid_unknown_fields=True):
    channel: str
    pricePerMessage: float
    currency: str = "EUR"
    country: str = ""


class ListedPriceOut(Struct):
    """One entry of the price list (a report's price is `types.PriceOut`)."""

    channel: str
    country: str
    pricePerMessage: float
    currency: str


class PricesOut(Struct):
    prices: list[ListedPriceOut]


# JSON field -> SmppConnector attribute
_FIELDS = {
    "host": "host",
    "port": "port",
    "systemId": "system_id",
    "password": "password",
    "systemType": "system_type",
    "tls": "tls",
    "throughput": "throughput_per_s",
    "window": "window",
    "enquireLinkS": "enquire_link_s",
    "responseTimeoutS": "response_timeout_s",
    "reconnectMinS": "reconnect_min_s",
    "reconnectMaxS": "reconnect_max_s",
    "destTon": "dest_addr_ton",
    "destNpi": "dest_addr_npi",
}


def connector_out(c: SmppConnector) -> ConnectorOut:
    return ConnectorOut(
        name=c.name,
        host=c.host,
        port=c.port,
        systemId=c.system_id,
        systemType=c.system_type,
        tls=c.tls,
        throughput=c.throughput_per_s,
        window=c.window,
        enquireLinkS=c.enquire_link_s,
        responseTimeoutS=c.response_timeout_s,
        reconnectMinS=c.reconnect_min_s,
        reconnectMaxS=c.reconnect_max_s,
        destTon=c.dest_addr_ton,
        destNpi=c.dest_addr_npi,
    )


def route_out(r: SmsRoute) -> RouteOut:
    return RouteOut(r.prefix, r.connector)


def price_out(p: Price) -> ListedPriceOut:
    return ListedPriceOut(p.channel, p.country, p.price_per_message, p.currency)


def operator(request: Request) -> Services:
    """The services, once the operator token checks out (401 otherwise)."""
    svc = services(request)
    if svc.operator is None:
        raise NotFound("Not found")
    svc.operator.check(request.headers.get("authorization"))
    return svc


def _connectors(svc: Services) -> SmsConnectors:
    if svc.connectors is None:
        raise NotFound("Not found")
    return svc.connectors


def _prices(svc: Services) -> PriceBook:
    if svc.prices is None:
        raise NotFound("Not found")
    return svc.prices


def _default(value: str) -> str:
    return "" if value == "default" else value


# -- connectors ---------------------------------------------------------------------------------


async def create_connector(request: Request) -> Response:
    svc = operator(request)
    body = await decode(request, ConnectorIn, svc.max_body_bytes)
    connector = SmppConnector(
        name=body.name, **{attr: getattr(body, field) for field, attr in _FIELDS.items()}
    )
    return json_response(connector_out(await _connectors(svc).add(connector)))


async def list_connectors(request: Request) -> Response:
    svc = operator(request)
    return json_response(ConnectorsOut([connector_out(c) for c in await _connectors(svc).list_connectors()]))


async def get_connector(request: Request) -> Response:
    svc = operator(request)
    return json_response(connector_out(await _connectors(svc).get(request.path_params["name"])))


async def update_connector(request: Request) -> Response:
    svc = operator(request)
    name = request.path_params["name"]
    body = await decode(request, ConnectorUpdateIn, svc.max_body_bytes)
    if body.name is not None and body.name != name:
        raise ValidationFailed(field="name", problem="cannot be changed (delete and create instead)")
    changes: dict[str, Any] = {
        attr: getattr(body, field) for field, attr in _FIELDS.items() if getattr(body, field) is not None
    }
    return json_response(connector_out(await _connectors(svc).update(name, changes)))


async def delete_connector(request: Request) -> Response:
    svc = operator(request)
    await _connectors(svc).remove(request.path_params["name"])
    return Response(status_code=204)


# -- routes -------------------------------------------------------------------------------------


async def set_route(request: Request) -> Response:
    svc = operator(request)
    body = await decode(request, RouteIn, svc.max_body_bytes)
    return json_response(route_out(await _connectors(svc).set_route(body.prefix, body.connector)))


async def list_routes(request: Request) -> Response:
    svc = operator(request)
    return json_response(RoutesOut([route_out(r) for r in await _connectors(svc).routes()]))


async def delete_route(request: Request) -> Response:
    svc = operator(request)
    await _connectors(svc).remove_route(request.path_params["prefix"])
    return Response(status_code=204)


# -- prices -------------------------------------------------------------------------------------


async def set_price(request: Request) -> Response:
    svc = operator(request)
    body = await decode(request, PriceIn, svc.max_body_bytes)
    price = await _prices(svc).set(body.channel, body.country, body.pricePerMessage, body.currency)
    return json_response(price_out(price))


async def list_prices(request: Request) -> Response:
    svc = operator(request)
    return json_response(PricesOut([price_out(p) for p in await _prices(svc).list_prices()]))


async def delete_price(request: Request) -> Response:
    svc = operator(request)
    params = request.path_params
    await _prices(svc).delete(params["channel"], _default(params["country"]))
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        Route("/admin/1/connectors", create_connector, methods=["POST"]),
        Route("/admin/1/connectors", list_connectors, methods=["GET"]),
        Route("/admin/1/connectors/{name}", get_connector, methods=["GET"]),
        Route("/admin/1/connectors/{name}", update_connector, methods=["PUT"]),
        Route("/admin/1/connectors/{name}", delete_connector, methods=["DELETE"]),
        Route("/admin/1/routes", set_route, methods=["POST"]),
        Route("/admin/1/routes", list_routes, methods=["GET"]),
        Route("/admin/1/routes/{prefix}", delete_route, methods=["DELETE"]),
        Route("/admin/1/prices", set_price, methods=["POST"]),
        Route("/admin/1/prices", list_prices, methods=["GET"]),
        Route("/admin/1/prices/{channel}/{country}", delete_price, methods=["DELETE"]),
    ]
