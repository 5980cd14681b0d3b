"""The Grafana dashboard asks only for what the running worker and gateway export.

Grafana cannot run here, so each panel's PromQL is parsed (``promql_parser``: a syntax error
fails too) for its metric names and the label names it uses, and both are checked against a
live stack's endpoints after a workload (``conftest.workload``). The provisioning files and the
Prometheus config are checked to agree with the dashboard and with the default ports in code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from gateway.settings import DEFAULT_METRICS_PORT as GATEWAY_METRICS_PORT
from telemetry.metrics import DEFAULT_WORKER_METRICS_PORT

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "kartu.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
# Series Prometheus makes itself for every target: no exporter has them.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

# Grafana's own variables are not PromQL: a duration stands in for them before parsing.
_GRAFANA_DURATION = re.compile(r"\$__(rate_interval|interval|range)\b")


def promql_names(expr: str) -> tuple[set[str], dict[str, set[str]], set[str]]:
    """(metric names, label names matched per metric name, label names grouped or matched on)
    of a PromQL expression, read from its syntax tree (a syntax error raises ValueError)."""
    names: set[str] = set()
    matched: dict[str, set[str]] = {}
    grouped: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            labels = {m.name for m in node.matchers.matchers} - {"__name__"}
            name = node.name or next(
                (m.value for m in node.matchers.matchers if m.name == "__name__"), None
            )
            assert name, f"a selector without a metric name: {expr!r}"
            names.add(name)
            matched.setdefault(name, set()).update(labels)
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouped.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            if node.modifier.matching is not None:
                grouped.update(node.modifier.matching.labels)
            grouped.update(node.modifier.group_labels or ())

    promql_parser.walk(promql_parser.parse(_GRAFANA_DURATION.sub("5m", expr)), visit)
    return names, matched, grouped


def test_promql_names_reads_names_labels_and_groupings():
    names, matched, grouped = promql_names(
        'histogram_quantile(0.95, sum by (le, operation) (rate(foo_bucket{outcome!~"ok|x"}[5m])))'
        " / ignoring(le) bar_total * 60 > bool 0 and on (job) up{job=~'a|b'}"
    )
    assert names == {"foo_bucket", "bar_total", "up"}
    assert matched == {"foo_bucket": {"outcome"}, "bar_total": set(), "up": {"job"}}
    assert grouped == {"le", "operation", "job"}
    assert promql_names("sum(increase(x[$__range]))")[0] == {"x"}
    with pytest.raises(ValueError):
        promql_names("sum(rate(x[5m])")


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def targets() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels() for t in p["targets"]]


def test_dashboard_is_well_formed_and_provisioned():
    board = dashboard()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert datasource["datasources"][0]["type"] == "prometheus"
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "kartu.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert board["uid"] and board["title"] == "Kartu"


def test_prometheus_scrapes_the_ports_the_code_defaults_to():
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in config["scrape_configs"]
    }
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    server_metrics = compose["services"]["temporal"]["environment"]["PROMETHEUS_ENDPOINT"]
    assert jobs == {
        "kartu-worker": [f"worker:{DEFAULT_WORKER_METRICS_PORT}"],
        "kartu-gateway": [f"gateway:{GATEWAY_METRICS_PORT}"],
        "temporal-server": [f"temporal:{server_metrics.rsplit(':', 1)[1]}"],
    }
    # The jobs the dashboard filters on are the ones Prometheus scrapes.
    named = {
        job
        for _, expr in targets()
        for found in re.findall(r'job=~?"([^"]+)"', expr)
        for job in found.split("|")
    }
    assert named and named <= set(jobs)


@pytest.mark.parametrize(("title", "expr"), targets())
async def test_each_query_names_only_exported_metrics(workload, title: str, expr: str):
    exported: dict[str, set[str]] = {}
    for name, labels, _ in [*workload.worker, *workload.gateway]:
        exported.setdefault(name, set()).update(labels)
    for name in SYNTHETIC:
        exported.setdefault(name, set()).update({"job", "instance"})
    names, matched, grouped = promql_names(expr)
    assert names, f"{title}: no metric in {expr!r}"
    missing = names - set(exported)
    assert not missing, f"{title}: {sorted(missing)} not exported"
    # Prometheus adds job and instance to every scraped series.
    for name, labels in matched.items():
        unknown = labels - exported[name] - {"job", "instance", "__name__"}
        assert not unknown, f"{title}: {name} has no label {sorted(unknown)}"
    available = set().union(*(exported[n] for n in names)) | {"job", "instance"}
    unknown = grouped - available
    assert not unknown, f"{title}: grouped by {sorted(unknown)}, which {sorted(names)} lack"
