"""Prometheus metrics (`/metrics`, docs/api.md#operations): the `Metrics` port, HTTP answers, gauges at
scrape time.

Each `PrometheusMetrics` owns its registry (process, platform and GC collectors included), so two
gateways in one process (tests) count apart. Counters are moved where things happen: services
through the `Metrics` port, the HTTP app through one pre-bound counter per route. They are plain
integers in a dict, read by a collector when `/metrics` is scraped: every count happens on the event
loop's thread, so prometheus_client's locked `Counter.inc` (a mutex per increment, several per
accepted send) buys nothing. Gauges are sampled at scrape time too (`observe`), never kept up to
date on the hot path.

| metric | labels |
| --- | --- |
| omnirelay_messages_accepted_total | api |
| omnirelay_messages_final_total | channel, status_group |
| omnirelay_failovers_total | channel (of the step that failed) |
| omnirelay_channel_send_errors_total | channel, kind (unavailable, rejected) |
| omnirelay_receipts_total | result (applied, late) |
| omnirelay_pushes_total | result (ok, failed, given_up) |
| omnirelay_messenger_webhook_skipped_total | kind (message, echo, delivery, read, postback, optin, …) |
| omnirelay_funnel_steps_total | scenario (key), step (index), channel, outcome (`ports.FUNNEL_OUTCOMES`) |
| omnirelay_http_requests_total | route (template), method, status_class |
| omnirelay_messages_waiting | waiting_for (due, sending, scheduled, receipt) |
| omnirelay_reports_queued | queue (pull, push) |
| omnirelay_smpp_bound | connector |
| omnirelay_smpp_binds_up | |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from omnirelay.ports import Api, Backlog


class _Counter(Collector):
    """A labelled counter as a dict of plain integers, exposed as `<name>_total` at scrape time."""

    def __init__(self, name: str, documentation: str, labels: list[str], registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self.values: dict[tuple[str, ...], int] = {}
        registry.register(self)

    def inc(self, key: tuple[str, ...]) -> None:
        values = self.values
        values[key] = values.get(key, 0) + 1

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, value in sorted(list(self.values.items())):  # list(): one step, safe from a scrape thread
            family.add_metric(list(key), value)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labels)


class _Sampled(Collector):
    """The gauges, from the last sample taken at scrape time."""

    def __init__(self) -> None:
        self.backlog: Backlog | None = None  # None: storage could not be read
        self.binds: Mapping[str, bool] = {}
        self.nodes: Mapping[str, int] | None = None  # cluster members by state; None: not read

    def collect(self) -> Iterator[Metric]:
        backlog = self.backlog
        if backlog is not None:
            waiting = GaugeMetricFamily(
                "omnirelay_messages_waiting",
                "Messages not final, by what they wait for: due now, being sent, scheduled later "
                "(sendAt or a retry), a receipt",
                labels=["waiting_for"],
            )
            waiting.add_metric(["due"], backlog.due)
            waiting.add_metric(["sending"], backlog.sending)
            waiting.add_metric(["scheduled"], backlog.scheduled)
            waiting.add_metric(["receipt"], backlog.waiting_receipt)
            yield waiting
            queued = GaugeMetricFamily(
                "omnirelay_reports_queued",
                "Reports waiting to be pulled (GET .../reports) or pushed to notifyUrl",
                labels=["queue"],
            )
            queued.add_metric(["pull"], backlog.reports_pull)
            queued.add_metric(["push"], backlog.reports_push)
            yield queued
        bound = GaugeMetricFamily(
            "omnirelay_smpp_bound", "1 when the SMPP connector is bound", labels=["connector"]
        )
        for name, up in sorted(self.binds.items()):
            bound.add_metric([name], 1.0 if up else 0.0)
        yield bound
        yield GaugeMetricFamily(
            "omnirelay_smpp_binds_up",
            "SMPP connectors bound",
            value=sum(1 for up in self.binds.values() if up),
        )
        if self.nodes is not None:
            nodes = GaugeMetricFamily(
                "omnirelay_cluster_nodes",
                "Gateway nodes on this database by state (LIVE, STALE, STOPPED), by the database's clock",
                labels=["state"],
            )
            for state, count in sorted(self.nodes.items()):
                nodes.add_metric([state], count)
            yield nodes


class PrometheusMetrics:
    """Implements the `Metrics` port; `count_requests` is the HTTP app's `RequestCounter`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)  # stateless: the default registry's instances serve any registry
        self._accepted = _Counter(
            "omnirelay_messages_accepted",
            "Messages committed by a send API, one per messageId (those rejected at acceptance included)",
            ["api"],
            r,
        )
        self._final = _Counter(
            "omnirelay_messages_final",
            "Messages that reached their final status, by the final step's channel and status group",
            ["channel", "status_group"],
            r,
        )
        self._failovers = _Counter(
            "omnirelay_failovers",
            "Steps that failed (rejected, undeliverable, expired) and moved the message to its next step",
            ["channel"],
            r,
        )
        self._send_errors = _Counter(
            "omnirelay_channel_send_errors",
            "Sends a channel refused: unavailable (retried) or rejected (permanent)",
            ["channel", "kind"],
            r,
        )
        self._receipts = _Counter(
            "omnirelay_receipts",
            "Receipts applied to their message, or recorded late (the message had moved on)",
            ["result"],
            r,
        )
        self._pushes = _Counter(
            "omnirelay_pushes",
            "Reports pushed to notifyUrl: ok, failed (retried later), given up (queued for pull)",
            ["result"],
            r,
        )
        self._webhook_skipped = _Counter(
            "omnirelay_messenger_webhook_skipped",
            "Meta webhook elements that could not be used (e.g. a chat plugin guest's, without a PSID) and"
            " were skipped; the rest of their batch was handled",
            ["kind"],
            r,
        )
        self._funnel = _Counter(
            "omnirelay_funnel_steps",
            "OMNI scenario steps by outcome: sent (the channel took it), met (its success criterion), "
            "failed_rejected / failed_receipt / failed_expired (it failed, and the message failed over "
            "or ended), late_success (a delivery or read after it had failed over)",
            ["scenario", "step", "channel", "outcome"],
            r,
        )
        self._http = _Counter(
            "omnirelay_http_requests",
            "HTTP answers by route template, method and status class",
            ["route", "method", "status_class"],
            r,
        )
        self._sampled = _Sampled()
        r.register(self._sampled)

    # -- the Metrics port ------------------------------------------------------------------------

    def accepted(self, api: Api) -> None:
        self._accepted.inc((api.value,))

    def final(self, channel: str, group: str) -> None:
        self._final.inc((channel, group))

    def failover(self, channel: str) -> None:
        self._failovers.inc((channel,))

    def send_error(self, channel: str, kind: str) -> None:
        self._send_errors.inc((channel, kind))

    def receipt(self, result: str) -> None:
        self._receipts.inc((result,))

    def push(self, result: str) -> None:
        self._pushes.inc((result,))

    def webhook_skipped(self, kind: str) -> None:
        self._webhook_skipped.inc((kind,))

    def funnel(self, scenario: str, step: int, channel: str, outcome: str) -> None:
        self._funnel.inc((scenario, str(step), channel, outcome))

    # -- HTTP ------------------------------------------------------------------------------------

    def count_requests(self, route: str, method: str) -> Callable[[int], None]:
        """One route's counter: its label keys are made once, then an answer is one `inc`."""
        keys = [(route, method, f"{klass}xx") for klass in range(6)]
        inc = self._http.inc

        def count(status: int) -> None:
            inc(keys[status // 100 if 100 <= status < 600 else 5])

        return count

    # -- scrape ----------------------------------------------------------------------------------

    def observe(
        self, backlog: Backlog | None, binds: Mapping[str, bool], nodes: Mapping[str, int] | None = None
    ) -> None:
        """The gauges' values for the coming `render` (None: storage could not be read)."""
        self._sampled.backlog = backlog
        self._sampled.binds = dict(binds)
        self._sampled.nodes = None if nodes is None else dict(nodes)

    def render(self) -> bytes:
        return generate_latest(self.registry)
