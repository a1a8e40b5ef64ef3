#!/usr/bin/env python3
"""Writes weir.json, the Grafana dashboard for weir's /metrics. Run it after
changing a panel: python3 examples/grafana/make_dashboard.py"""
import json
import pathlib

PANELS = [
    # (title, unit, [(expr, legend)], kind)
    ("Events per second", "ops", [
        ("sum(rate(weir_source_events_total[1m]))", "in"),
        ("sum by (output) (rate(weir_output_events_total[1m]))", "out {{output}}"),
        ("sum(rate(weir_dead_letter_events_total[1m]))", "dead letters"),
    ], "timeseries"),
    ("Kafka consumer lag", "short", [
        ("sum by (topic, partition) (weir_kafka_consumer_lag)", "{{topic}}[{{partition}}]"),
    ], "timeseries"),
    ("End-to-end latency p99", "s", [
        ("histogram_quantile(0.99, sum by (le, output) (rate(weir_end_to_end_latency_seconds_bucket[5m])))", "{{output}}"),
        ("histogram_quantile(0.99, sum by (le) (rate(weir_dead_letter_latency_seconds_bucket[5m])))", "dead letters"),
    ], "timeseries"),
    ("Stage batch latency p50 / p99", "s", [
        ("histogram_quantile(0.5, sum by (le, stage) (rate(weir_stage_batch_latency_seconds_bucket[5m])))", "p50 {{stage}}"),
        ("histogram_quantile(0.99, sum by (le, stage) (rate(weir_stage_batch_latency_seconds_bucket[5m])))", "p99 {{stage}}"),
    ], "timeseries"),
    ("Stage events per second", "ops", [
        ("sum by (stage) (rate(weir_stage_events_in_total[1m]))", "in {{stage}}"),
        ("sum by (stage) (rate(weir_stage_events_out_total[1m]))", "out {{stage}}"),
    ], "timeseries"),
    ("Dead letters by stage", "ops", [
        ("sum by (stage, plugin) (rate(weir_stage_dead_letters_total[5m]))", "{{stage}} ({{plugin}})"),
    ], "timeseries"),
    ("Plugin faults", "short", [
        ("sum by (stage, kind) (increase(weir_stage_faults_total[5m]))", "{{stage}} {{kind}}"),
    ], "timeseries"),
    ("Batch size (events)", "short", [
        ("histogram_quantile(0.5, sum by (le) (rate(weir_batch_events_bucket[5m])))", "source p50"),
        ("sum by (stage) (rate(weir_stage_batch_events_sum[5m])) / sum by (stage) (rate(weir_stage_batch_events_count[5m]))", "mean {{stage}}"),
    ], "timeseries"),
    ("Plugin instance memory", "bytes", [
        ("weir_stage_memory_bytes", "{{stage}} ({{plugin}})"),
    ], "timeseries"),
    ("Committed offsets", "short", [
        ("weir_kafka_committed_offset", "{{topic}}[{{partition}}]"),
    ], "timeseries"),
    ("Plugin versions served", "short", [
        ("weir_plugin_info", "{{stage}}: {{plugin}} {{version}}"),
    ], "table"),
    ("Reloads", "short", [
        ("sum(increase(weir_plugin_swaps_total[1h]))", "swaps (1h)"),
        ("increase(weir_reload_refusals_total[1h])", "refusals (1h)"),
    ], "stat"),
]


def panel(i, title, unit, targets, kind):
    return {
        "id": i + 1,
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {
                "refId": chr(ord("A") + j),
                "expr": expr,
                "legendFormat": legend,
                **({"format": "table", "instant": True} if kind == "table" else {}),
            }
            for j, (expr, legend) in enumerate(targets)
        ],
    }


dashboard = {
    "title": "weir",
    "uid": "weir-pipeline",
    "tags": ["weir"],
    "timezone": "browser",
    "schemaVersion": 39,
    "version": 1,
    "refresh": "10s",
    "time": {"from": "now-1h", "to": "now"},
    "templating": {
        "list": [
            {
                "name": "datasource",
                "type": "datasource",
                "query": "prometheus",
                "label": "Prometheus",
            }
        ]
    },
    "panels": [panel(i, *p) for i, p in enumerate(PANELS)],
}

out = pathlib.Path(__file__).with_name("weir.json")
out.write_text(json.dumps(dashboard, indent=2) + "\n")
print(out)
