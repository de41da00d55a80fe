"""Operator API (docs/api.md#operator-api): `/admin/1/connectors`, `/admin/1/routes`, `/admin/1/prices`,
`/admin/1/nodes`.

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

from omnirelay.domain import connectors as limits
from omnirelay.domain.connectors import SmppConnector, SmsRoute
from omnirelay.domain.errors import NotFound, ValidationFailed
from omnirelay.domain.messages import Channel
from omnirelay.domain.prices import MAX_PRICE, Price
from omnirelay.domain.times import format_time
from omnirelay.http import patterns
from omnirelay.http.body import decode
from omnirelay.http.context import Services, json_response, services
from omnirelay.services.connectors import SmsConnectors
from omnirelay.services.prices import PriceBook

Number = Annotated[float, Meta(ge=0)]


def _doc(**schema: object) -> Meta:
    """What `SmppConnector.check`, `check_prefix` and `PriceEntry` enforce, for the document only:
    decoding keeps the plain types, so that a broken rule is answered with its field's name."""
    return Meta(extra_json_schema=schema)


def _smpp(low: int, high: int) -> Meta:  # SMPP C-Octet Strings: printable ASCII
    return _doc(pattern=f"^[ -~]{{{low},{high}}}$")


def _at_least(low: float) -> Meta:
    return _doc(type="number", minimum=low)


def _any_case(words: list[str]) -> str:
    return "^(" + "|".join("".join(f"[{c.upper()}{c.lower()}]" for c in w) for w in words) + ")$"


Name = Annotated[str, _doc(pattern=limits.NAME_PATTERN, maxLength=limits.MAX_NAME)]
Host = Annotated[str, _doc(pattern=patterns.NO_SPACE, maxLength=limits.MAX_HOST)]
Port = Annotated[int, _doc(type="integer", minimum=1, maximum=65535)]
SystemId = Annotated[str, _smpp(1, limits.MAX_SYSTEM_ID)]
Password = Annotated[str, _smpp(0, limits.MAX_PASSWORD)]
SystemType = Annotated[str, _smpp(0, limits.MAX_SYSTEM_TYPE)]
Window = Annotated[int, _doc(type="integer", minimum=1, maximum=limits.MAX_WINDOW)]
Binds = Annotated[
    int,
    _doc(
        type="integer",
        minimum=1,
        maximum=limits.MAX_BINDS,
        description="binds for the whole cluster, at most one per node",
    ),
]
EnquireLink = Annotated[float, _at_least(1.0)]
ResponseTimeout = Annotated[float, _at_least(0.1)]
Reconnect = Annotated[float, _at_least(0.01)]
TonNpi = Annotated[int, _doc(type="integer", minimum=0, maximum=255)]


class ConnectorIn(Struct, forbid_unknown_fields=True):
    name: Name
    host: Host
    port: Port
    systemId: SystemId
    password: Password = ""
    systemType: SystemType = ""
    tls: bool = False
    throughput: Number = 0.0
    window: Window = 10
    enquireLinkS: EnquireLink = 30.0
    responseTimeoutS: ResponseTimeout = 10.0
    reconnectMinS: Reconnect = 1.0
    reconnectMaxS: Annotated[Reconnect, _doc(description="at least reconnectMinS")] = 60.0
    destTon: TonNpi = 1
    destNpi: TonNpi = 1
    binds: Binds = 1


class ConnectorUpdateIn(Struct, forbid_unknown_fields=True):
    name: Name | None = None
    host: Host | None = None
    port: Port | None = None
    systemId: SystemId | None = None
    password: Password | None = None
    systemType: SystemType | None = None
    tls: bool | None = None
    throughput: Number | None = None
    window: Window | None = None
    enquireLinkS: EnquireLink | None = None
    responseTimeoutS: ResponseTimeout | None = None
    reconnectMinS: Reconnect | None = None
    reconnectMaxS: Annotated[Reconnect, _doc(description="at least reconnectMinS")] | None = None
    destTon: TonNpi | None = None
    destNpi: TonNpi | None = None
    binds: Binds | None = None


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
    binds: int


class ConnectorsOut(Struct):
    connectors: list[ConnectorOut]


class RouteIn(Struct, forbid_unknown_fields=True):
    connector: Annotated[str, _doc(description="the name of a connector")]
    prefix: Annotated[
        str,
        _doc(
            pattern=patterns.PREFIX,
            description="destination digits (a '+' is dropped); empty or `default`: the default route",
        ),
    ] = ""


class RouteOut(Struct):
    prefix: str
    connector: str


class RoutesOut(Struct):
    routes: list[RouteOut]


class NodeOut(Struct):
    nodeId: str
    host: str
    pid: int
    version: str
    state: Annotated[str, Meta(description="LIVE, STALE (heartbeat too old) or STOPPED")]
    startedAt: str
    heartbeatAt: str
    stoppedAt: str | None


class NodesOut(Struct):
    live: int
    staleAfterS: float
    nodes: list[NodeOut]


class PriceIn(Struct, forbid_unknown_fields=True):
    channel: Annotated[str, _doc(pattern=_any_case(list(Channel.__members__)))]
    pricePerMessage: Annotated[float, _doc(type="number", minimum=0, maximum=MAX_PRICE)]
    currency: Annotated[str, _doc(pattern="^[A-Za-z]{3}$", description="ISO 4217")] = "EUR"
    country: Annotated[str, _doc(pattern="^([A-Za-z]{2})?$", description='ISO 3166, or "" (default)')] = ""


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
    "binds": "binds",
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
        binds=c.binds,
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


# -- cluster ------------------------------------------------------------------------------------


async def list_nodes(request: Request) -> Response:
    svc = operator(request)
    if svc.membership is None:
        raise NotFound("Not found")
    members, live = await svc.membership.members()
    out = [
        NodeOut(
            nodeId=n.node_id,
            host=n.host,
            pid=n.pid,
            version=n.version,
            state=state.value,
            startedAt=format_time(n.started_at),
            heartbeatAt=format_time(n.heartbeat_at),
            stoppedAt=format_time(n.stopped_at) if n.stopped_at is not None else None,
        )
        for n, state in members
    ]
    return json_response(NodesOut(live, svc.membership.stale_s, out))


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
        Route("/admin/1/nodes", list_nodes, methods=["GET"]),
        Route("/admin/1/prices", set_price, methods=["POST"]),
        Route("/admin/1/prices", list_prices, methods=["GET"]),
        Route("/admin/1/prices/{channel}/{country}", delete_price, methods=["DELETE"]),
    ]
