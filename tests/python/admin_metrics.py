#!/usr/bin/env python3
"""Reads weir's /metrics with prometheus_client's parser (the Python client
library of the Prometheus project) and checks what every family must hold.
Prints produce_requests=N for tests/admin_http.rs.
Usage: admin_metrics.py URL"""
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

url = sys.argv[1]
with urllib.request.urlopen(url, timeout=10) as response:
    content_type = response.headers.get("Content-Type", "")
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    text = response.read().decode("utf-8")

families = {f.name: f for f in text_string_to_metric_families(text)}
for name in ["weir_requests", "weir_request_duration_seconds", "weir_fetch_bytes", "weir_log_end_offset",
             "weir_uptime_seconds", "weir_ready"]:
    assert name in families, f"{name} missing: {sorted(families)}"
assert families["weir_requests"].type == "counter"
assert families["weir_request_duration_seconds"].type == "histogram"

produce = [s for s in families["weir_requests"].samples
           if s.name == "weir_requests_total" and s.labels.get("api") == "Produce"]
assert len(produce) == 1, produce
# Histogram buckets are cumulative and end in +Inf = _count, per API and stage.
durations = families["weir_request_duration_seconds"].samples
series = {(s.labels["api"], s.labels["stage"]) for s in durations}
assert ("Produce", "handler") in series and ("Produce", "append") in series, series
for api, stage in series:
    samples = [s for s in durations if (s.labels["api"], s.labels["stage"]) == (api, stage)]
    buckets = [s for s in samples if s.name.endswith("_bucket")]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts), (api, stage, counts)
    assert buckets[-1].labels["le"] == "+Inf"
    count = next(s.value for s in samples if s.name.endswith("_count"))
    assert buckets[-1].value == count, (api, stage, buckets[-1].value, count)
print(f"produce_requests={int(produce[0].value)}")
