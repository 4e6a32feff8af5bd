"""What operations people graph and alert on, in Prometheus's text format (``/metrics``).

One :class:`Metrics` per running platform (``Context.metrics()``), with its own registry: tests
build many apps in one process, and prometheus-client's global registry would refuse the second
set of the same names. Counters only grow; gauges that describe a queue or a table are read when
scraped (``gauge``), so nothing has to keep them up to date.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Request latencies from 5 ms (a cached page) to 10 s (a large import).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# An ingest batch: a few ms (one reading) to seconds (a gateway's backlog after an outage).
BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The platform's counters, histograms and gauges, labelled so that cardinality stays
    bounded: routes by their template (``/api/v1/operate/incidents/{incident_id}``), never the
    raw path; ingestion by channel (mqtt, http, ngsi, direct)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "qala_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "qala_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.ingest_messages = Counter(
            "qala_ingest_messages",
            "Messages taken from the broker (acknowledged after their batch committed).",
            ["channel"],
            registry=registry,
        )
        self.ingest_readings = Counter(
            "qala_ingest_readings",
            "Readings handed to ingestion, by outcome: stored, or duplicate (already stored).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "qala_ingest_dead_letters",
            "Messages or items refused into the dead letters.",
            ["channel"],
            registry=registry,
        )
        self.findings = Counter(
            "qala_ingest_findings",
            "Rule findings raised on ingested readings.",
            ["channel"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "qala_ingest_batch_duration_seconds",
            "Time to store, evaluate and commit one ingest batch.",
            ["channel"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "qala_ingest_database_retries",
            "Batches tried again because the database failed transiently.",
            ["channel"],
            registry=registry,
        )
        self.latency_seconds = Histogram(
            "qala_ingest_end_to_end_seconds",
            "From a reading's publication (the payload's sent_us) to its commit.",
            ["channel"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self._gauges: dict[str, Gauge] = {}

    def gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """A gauge read when scraped (a queue's depth, a table's size); registering the same
        name again replaces what it reads (a restarted ingester in the same process)."""
        gauge = self._gauges.get(name)
        if gauge is None:
            gauge = self._gauges[name] = Gauge(name, documentation, registry=self.registry)
        gauge.set_function(read)

    def exposition(self) -> bytes:
        """Every metric in Prometheus's text format."""
        return generate_latest(self.registry)
