"""Real OTLP bytes from the OpenTelemetry SDK: spans recorded by its tracer, encoded by its OTLP encoder.

`otlp_proto` is the ExportTraceServiceRequest the SDK's encoder builds, serialised (what the
Collector's kafka exporter writes by default). `otlp_json` is the same request in OTLP/JSON, as
the Collector writes it: protobuf's JSON mapping with the spec's two differences (trace and span
ids in hex, enums as integers).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def record_spans(calls: list[dict[str, Any]], service: str = "chat-api", team: str | None = "search",
                 at_ns: int | None = None) -> Any:
    """An ExportTraceServiceRequest: per call, an LLM span with its attributes inside an HTTP span without."""
    exporter = InMemorySpanExporter()
    attributes = {"service.name": service, **({"team": team} if team else {})}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("spendwatch.tests", "1.0")
    for n, call in enumerate(calls):
        start = None if at_ns is None else at_ns + n * 1_000_000
        with tracer.start_as_current_span("POST /v1/chat", start_time=start) as outer:
            outer.set_attribute("http.request.method", "POST")
            span = tracer.start_span(f"chat {call.get('gen_ai.request.model', '')}", start_time=start)
            for name, value in call.items():
                span.set_attribute(name, value)
            span.end(end_time=None if start is None else start + 500_000)
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans())


def otlp_proto(request: Any) -> bytes:
    return bytes(request.SerializeToString())


def otlp_json(request: Any) -> bytes:
    document = MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
    return orjson.dumps(document)
