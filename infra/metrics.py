"""kefu's metrics: the Temporal SDK's Prometheus endpoint on the worker, and the project's own counters and histograms.

    KEFU_METRICS_ADDRESS=0.0.0.0:9464 python worker.py      → http://<worker>:9464/metrics

The SDK's own metrics (temporal_workflow_completed, temporal_workflow_task_schedule_to_start_latency, slots, …) and
the ones below come out of the same endpoint. The project's metrics are recorded from inside the workflow through
`workflow.metric_meter()`, which Temporal suppresses during replay, so a counter counts each event once however
often a history is replayed. Every helper here is a no-op outside a workflow (unit tests calling the state code
directly). Labels are low-cardinality (policy, request type, stage, clock, level, trigger), never a request id or
anything about the customer. docs/metrics.md lists them with example PromQL.

Pure module: it imports only temporalio, so the workflow sandbox accepts it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

ADDRESS_VARIABLE = "KEFU_METRICS_ADDRESS"

HOUR, DAY = 3600.0, 86400.0


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # counter | histogram (durations, in seconds)
    description: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


STAGE_ENTERED = Metric("kefu_requests_stage_entered", "counter",
                       "requests entering a lifecycle stage (received … completed); a reopen re-enters handling",
                       ("policy", "request_type", "stage"))
BREACHES = Metric("kefu_sla_breaches", "counter", "SLA deadlines missed, when the clock's breach timer fires",
                  ("policy", "request_type", "clock"))
ESCALATIONS = Metric("kefu_escalations", "counter", "steps up the escalation ladder, by new level and trigger "
                     "(breach, ack_timeout, revisit, signal, grade)", ("policy", "request_type", "level",
                                                                                 "trigger"))
REOPENS = Metric("kefu_reopens", "counter", "dissatisfied revisits that reopened the case (二次服务)",
                 ("policy", "request_type"))
FIRST_RESPONSE = Metric("kefu_first_response_seconds", "histogram",
                        "wall time from acceptance to the first response", ("policy", "request_type"),
                        (60, 300, 600, 1800, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, DAY, 2 * DAY))
RESOLUTION = Metric("kefu_resolution_seconds", "histogram", "wall time from acceptance to the resolution "
                    "(each round: a reopened case records again)", ("policy", "request_type"),
                    (HOUR, 4 * HOUR, 8 * HOUR, DAY, 2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, 15 * DAY, 30 * DAY))

ALL: tuple[Metric, ...] = (STAGE_ENTERED, BREACHES, ESCALATIONS, REOPENS, FIRST_RESPONSE, RESOLUTION)


# --- the worker's Prometheus endpoint ------------------------------------------------------------------------------
_runtime: Runtime | None = None


def prometheus_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics on bind_address (host:port), durations in seconds."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=bind_address, durations_as_seconds=True,
        histogram_bucket_overrides={m.name: list(m.buckets) for m in ALL if m.buckets})))


def runtime_from_env(environ: Mapping[str, str] | None = None) -> Runtime | None:
    """The runtime with the Prometheus endpoint when KEFU_METRICS_ADDRESS is set (one per process: the port is bound
    once), else None (the SDK's default runtime, no endpoint)."""
    global _runtime
    address = (os.environ if environ is None else environ).get(ADDRESS_VARIABLE, "").strip()
    if not address:
        return None
    if _runtime is None:
        _runtime = prometheus_runtime(address)
    return _runtime


# --- recording from the workflow ------------------------------------------------------------------------------------
def _meter() -> MetricMeter | None:
    return workflow.metric_meter() if workflow.in_workflow() else None


def _labels(policy: str | None, request_type: str | None) -> dict[str, str]:
    return {"policy": policy or "unknown", "request_type": request_type or "unclassified"}


def stage_entered(stage: str, policy: str | None, request_type: str | None) -> None:
    if meter := _meter():
        meter.create_counter(STAGE_ENTERED.name, STAGE_ENTERED.description).add(
            1, {**_labels(policy, request_type), "stage": stage})


def breach(clock: str, policy: str | None, request_type: str | None) -> None:
    if meter := _meter():
        meter.create_counter(BREACHES.name, BREACHES.description).add(
            1, {**_labels(policy, request_type), "clock": clock})


def escalation(level: int, trigger: str, policy: str | None, request_type: str | None) -> None:
    if meter := _meter():
        meter.create_counter(ESCALATIONS.name, ESCALATIONS.description).add(
            1, {**_labels(policy, request_type), "level": str(level), "trigger": trigger})


def reopen(policy: str | None, request_type: str | None) -> None:
    if meter := _meter():
        meter.create_counter(REOPENS.name, REOPENS.description).add(1, _labels(policy, request_type))


def first_response(elapsed: timedelta, policy: str | None, request_type: str | None) -> None:
    if meter := _meter():
        meter.create_histogram_timedelta(FIRST_RESPONSE.name, FIRST_RESPONSE.description, "s").record(
            max(elapsed, timedelta(0)), _labels(policy, request_type))


def resolution(elapsed: timedelta, policy: str | None, request_type: str | None) -> None:
    if meter := _meter():
        meter.create_histogram_timedelta(RESOLUTION.name, RESOLUTION.description, "s").record(
            max(elapsed, timedelta(0)), _labels(policy, request_type))
