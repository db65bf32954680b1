"""The deployment files agree with each other and with what the real programs accept.

Docker cannot run here, so these tests parse every file of the topology (compose, Collector,
Jaeger, processor, Prometheus, Alertmanager, Grafana, Dockerfile) and cross-check what one file
says another listens on. The real-tool checks (promtool, amtool) and the single-node run live in
tests/integration/test_deploy_*.py.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from rag_otel.cli import main
from rag_otel.config import load_config

ROOT = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
COLLECTOR_CONFIGS = sorted((ROOT / "collector-config").glob("*.yaml"))
JAEGER = yaml.safe_load((ROOT / "jaeger" / "config.yaml").read_text())
PROCESSOR_CONFIG = ROOT / "processors" / "rag-otel.yaml"
PROMETHEUS = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
ALERTMANAGER = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
DATASOURCES = yaml.safe_load(
    (ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "datasources.yaml").read_text())
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = ROOT / "deploy" / "prometheus" / "rules" / "rag-otel-rules.yml"
KNOWN = yaml.safe_load((ROOT / "tests" / "data" / "otelcol_components.yaml").read_text())
KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")
EXTERNAL = "example.com"  # RFC 2606 placeholder domain: documented as "replace with yours"


def hostport(value: str, default_port: int | None = None) -> tuple[str, int]:
    """``host:port``, ``scheme://host:port/path`` -> (host, port)."""
    parts = urlsplit(value if "://" in value else f"x://{value}")
    port = parts.port or default_port or {"http": 80, "https": 443}.get(parts.scheme)
    assert parts.hostname and port, f"no host:port in {value!r}"
    return parts.hostname, port


def collector(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def ctype(component_id: str) -> str:
    return component_id.split("/", 1)[0]


# --- what each service listens on, read from its own configuration --------------------------

def _receiver_ports(cfg: dict[str, Any]) -> set[int]:
    ports = set()
    for rc in (cfg.get("receivers") or {}).values():
        for proto in ((rc or {}).get("protocols") or {}).values():
            ports.add(hostport(proto["endpoint"])[1])
    return ports


def _telemetry_ports(cfg: dict[str, Any]) -> set[int]:
    readers = cfg["service"].get("telemetry", {}).get("metrics", {}).get("readers", [])
    return {r["pull"]["exporter"]["prometheus"]["port"] for r in readers}


def listening() -> dict[str, set[int]]:
    proc = load_config(PROCESSOR_CONFIG).processor
    out: dict[str, set[int]] = {
        "processor": {hostport(a)[1] for a in (proc.otlp_grpc, proc.otlp_http, proc.http)},
        "prometheus": {9090}, "alertmanager": {9093}, "grafana": {3000}, "demo-app": {8000}, "kafka": {9092},
        "postgres": {5432},
    }
    col: set[int] = set()
    for path in COLLECTOR_CONFIGS:
        cfg = collector(path)
        col |= _receiver_ports(cfg) | _telemetry_ports(cfg)
        col |= {hostport(e["endpoint"])[1] for k, e in cfg["exporters"].items() if ctype(k) == "prometheus"}
        col |= {hostport(e["endpoint"])[1] for e in cfg["extensions"].values()}
    out["collector"] = col
    out["jaeger"] = (_receiver_ports(JAEGER) | _telemetry_ports(JAEGER) | {16686}
                     | {hostport(JAEGER["extensions"]["healthcheckv2"]["http"]["endpoint"])[1]})
    return out


LISTENING = listening()


def assert_reachable(ref: str, where: str, default_port: int | None = None) -> None:
    host, port = hostport(ref, default_port)
    if host.endswith(EXTERNAL):
        return
    if host in ("localhost", "127.0.0.1"):
        return  # checked by the caller against the service it runs in
    assert host in SERVICES, f"{where}: {ref!r} names no compose service (services: {sorted(SERVICES)})"
    assert port in LISTENING[host], f"{where}: {ref!r}, but {host} listens on {sorted(LISTENING[host])}"


# --- every file parses -----------------------------------------------------------------------

OWNED = ["docker-compose.yml", "collector-config", "jaeger", "processors", "deploy"]


@pytest.mark.parametrize("path", sorted(
    p for name in OWNED for p in ([ROOT / name] if (ROOT / name).is_file() else (ROOT / name).rglob("*"))
    if p.suffix in (".yml", ".yaml", ".json")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_deployment_file_parses(path: Path) -> None:
    data = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    assert isinstance(data, dict) and data


# --- Collector and Jaeger: only real component names, pipelines wired ----------------------

def check_components(cfg: dict[str, Any], dist: dict[str, Any], name: str) -> None:
    deprecated = dist.get("deprecated") or {}
    for kind in KINDS:
        for cid in cfg.get(kind) or {}:
            t = ctype(cid)
            assert t not in deprecated.get(kind, []), f"{name}: {kind} {t!r} is a deprecated alias"
            assert t in dist[kind], f"{name}: {kind} {t!r} is not in {dist['version']} ({dist[kind]})"
    svc = cfg["service"]
    for ext in svc.get("extensions", []):
        assert ext in cfg["extensions"], f"{name}: extension {ext} used, not defined"
    connectors = set(cfg.get("connectors") or {})
    as_exporter: set[str] = set()
    as_receiver: set[str] = set()
    for pname, p in svc["pipelines"].items():
        assert ctype(pname) in ("traces", "metrics", "logs"), pname
        for r in p["receivers"]:
            assert r in (cfg.get("receivers") or {}) or r in connectors, f"{name}/{pname}: receiver {r}"
            as_receiver |= {r} & connectors
        for x in p.get("processors", []):
            assert x in cfg["processors"], f"{name}/{pname}: processor {x} not defined"
        for e in p["exporters"]:
            assert e in cfg["exporters"] or e in connectors, f"{name}/{pname}: exporter {e}"
            as_exporter |= {e} & connectors
    assert as_exporter == as_receiver == connectors, f"{name}: each connector must close a loop"
    used = {c for p in svc["pipelines"].values() for k in ("receivers", "processors", "exporters")
            for c in p.get(k, [])}
    for kind in ("receivers", "processors", "exporters"):
        unused = set(cfg.get(kind) or {}) - used
        assert not unused, f"{name}: {kind} defined but in no pipeline: {unused}"


@pytest.mark.parametrize("path", COLLECTOR_CONFIGS, ids=lambda p: p.name)
def test_collector_configs_use_current_contrib_components(path: Path) -> None:
    dist = KNOWN["otelcol-contrib"]
    check_components(collector(path), dist, path.name)
    text = path.read_text()
    assert f"otelcol-contrib v{dist['version']}" in text  # says which release it was written for
    assert SERVICES["collector"]["image"] == dist["image"]


def test_jaeger_config_uses_jaeger_v2_components_and_prometheus_for_spm() -> None:
    dist = KNOWN["jaeger-v2"]
    check_components(JAEGER, dist, "jaeger/config.yaml")
    assert SERVICES["jaeger"]["image"] == dist["image"]
    storage = JAEGER["extensions"]["jaeger_storage"]
    query = JAEGER["extensions"]["jaeger_query"]["storage"]
    assert query["traces"] in storage["backends"]
    prom = storage["metric_backends"][query["metrics"]]["prometheus"]  # the Monitor tab's source
    assert_reachable(prom["endpoint"], "jaeger metric backend")
    assert hostport(prom["endpoint"])[0] == "prometheus"


def test_single_node_scaled_and_kafka_topologies_route_as_documented() -> None:
    single, scaled, kafka = (collector(ROOT / "collector-config" / f"{n}.yaml")
                             for n in ("single-node", "scaled", "kafka"))
    for cfg in (single, scaled, kafka):
        p = cfg["service"]["pipelines"]
        assert p["traces/ingest"]["processors"][:2] == ["memory_limiter", "batch"]
        assert "otlp/processed" in p["traces/processed"]["receivers"]
        assert "otlp_grpc/jaeger" in p["traces/processed"]["exporters"]
        assert "prometheus" in p["metrics/processed"]["exporters"]
        assert "span_metrics" in p["metrics/processed"]["receivers"]
    assert single["service"]["pipelines"]["traces/ingest"]["exporters"] == ["otlp_grpc/processor"]
    for cfg in (scaled, kafka):
        lb = cfg["exporters"]["load_balancing/traces"]
        assert lb["routing_key"] == "traceID"
        assert lb["resolver"]["dns"]["hostname"] == "processor"
    assert scaled["service"]["pipelines"]["traces/ingest"]["exporters"] == ["load_balancing/traces"]
    assert kafka["service"]["pipelines"]["traces/ingest"]["exporters"] == ["kafka"]
    assert kafka["service"]["pipelines"]["traces/buffered"] == {
        "receivers": ["kafka"], "processors": ["memory_limiter", "batch"], "exporters": ["load_balancing/traces"]}
    for kind in ("traces", "metrics", "logs"):  # what goes into Kafka comes back out of the same topic
        # the receiver takes a list: its single `topic` is gone (contrib PR 46232), the exporter keeps `topic`
        assert [kafka["exporters"]["kafka"][kind]["topic"]] == kafka["receivers"]["kafka"][kind]["topics"]
        assert "topic" not in kafka["receivers"]["kafka"][kind]


# --- every reference across the files points at a service that listens there ----------------

def test_collector_exports_reach_listening_services() -> None:
    for path in COLLECTOR_CONFIGS:
        cfg = collector(path)
        for eid, e in cfg["exporters"].items():
            t = ctype(eid)
            if t in ("otlp_grpc", "otlp_http"):
                assert_reachable(e["endpoint"], f"{path.name} {eid}")
            elif t == "load_balancing":
                dns = e["resolver"]["dns"]
                assert_reachable(f"{dns['hostname']}:{dns['port']}", f"{path.name} {eid}")
                assert dns["port"] == hostport(load_config(PROCESSOR_CONFIG).processor.otlp_grpc)[1]
            elif t == "kafka":
                for b in e["brokers"]:
                    assert_reachable(b, f"{path.name} {eid}")
        for rid, r in cfg["receivers"].items():
            if ctype(rid) == "kafka":
                for b in r["brokers"]:
                    assert_reachable(b, f"{path.name} {rid}")


def test_processor_config_loads_and_points_at_the_stack() -> None:
    cfg = load_config(PROCESSOR_CONFIG, env={})
    p = cfg.processor
    for addr in (p.otlp_grpc, p.otlp_http, p.http):
        assert hostport(addr)[0] == "0.0.0.0", f"{addr}: a container must bind all interfaces"
    assert p.exports, "the processor must export to the Collector's second receiver"
    for e in p.exports:
        host, port = hostport(e.url)
        assert host == "collector" and urlsplit(e.url).scheme == "grpc"
        for path in COLLECTOR_CONFIGS:  # every topology has that receiver on that port
            processed = collector(path)["receivers"]["otlp/processed"]["protocols"]["grpc"]["endpoint"]
            assert hostport(processed)[1] == port, path.name
    kinds = {n.type for n in cfg.alerting.notifiers}
    assert {"alertmanager", "webhook"} <= kinds
    for n in cfg.alerting.notifiers:
        if n.url:
            assert_reachable(n.url, f"processor notifier {n.type}")
    # the fleet store: its catalog is the compose postgres (database and user as it creates them), its
    # files on the shared volume every replica mounts, its password from the environment, not the file
    assert p.store and p.store.startswith("ducklake:postgres:")
    kw = dict(part.split("=", 1) for part in p.store.removeprefix("ducklake:postgres:").split())
    assert "password" not in kw
    assert_reachable(f"{kw['host']}:{kw['port']}", "processor.store catalog")
    pg_env = SERVICES["postgres"]["environment"]
    assert (kw["dbname"], kw["user"]) == (pg_env["POSTGRES_DB"], pg_env["POSTGRES_USER"])
    assert SERVICES["processor"]["environment"]["PGPASSWORD"] == pg_env["POSTGRES_PASSWORD"]
    mounts = dict(v.split(":")[:2] for v in SERVICES["processor"]["volumes"])
    assert mounts.get("lake-data", "").rstrip("/") == p.store_data_path.rstrip("/"), "the lake is not on the volume"
    assert "postgres" in SERVICES["processor"]["depends_on"]
    rules = {r.name: r for r in cfg.performance_monitoring.alert_rules}
    assert {"high_latency", "high_error_rate"} <= set(rules)
    assert any(r.baseline is not None and r.metric.startswith("quality") for r in rules.values())


def test_committed_prometheus_rules_equal_a_fresh_generation(tmp_path: Path) -> None:
    fresh = tmp_path / "rules.yml"
    assert main(["alerts", "export-prometheus", "--config", str(PROCESSOR_CONFIG), "--out", str(fresh)]) == 0
    assert RULES.read_text() == fresh.read_text(), (
        "deploy/prometheus/rules/rag-otel-rules.yml is stale: run rag-otel alerts export-prometheus "
        "--config processors/rag-otel.yaml --out deploy/prometheus/rules/rag-otel-rules.yml")


def test_prometheus_scrapes_and_alerts_what_the_stack_serves() -> None:
    assert [ROOT / "deploy" / "prometheus" / f for f in PROMETHEUS["rule_files"]] == [RULES]
    for am in PROMETHEUS["alerting"]["alertmanagers"]:
        for t in am["static_configs"][0]["targets"]:
            assert_reachable(t, "prometheus alerting")
    jobs = {j["job_name"]: j for j in PROMETHEUS["scrape_configs"]}
    proc = jobs["rag-otel-processor"]
    [dns] = proc["dns_sd_configs"]  # every replica, not one of them
    assert dns["names"] == ["processor"] and dns["type"] == "A"
    assert_reachable(f"processor:{dns['port']}", "prometheus job rag-otel-processor")
    assert dns["port"] == hostport(load_config(PROCESSOR_CONFIG).processor.http)[1]
    for job in jobs.values():
        for sc in job.get("static_configs", []):
            for t in sc["targets"]:
                assert_reachable(t, f"prometheus job {job['job_name']}")
    exporter_job = jobs["otel-collector-exporter"]
    assert exporter_job["honor_labels"] is True  # job = the app's service.name, as the system rules expect
    for path in COLLECTOR_CONFIGS:
        port = hostport(collector(path)["exporters"]["prometheus"]["endpoint"])[1]
        assert exporter_job["static_configs"][0]["targets"] == [f"collector:{port}"], path.name


def test_alertmanager_routes_every_severity_to_a_receiver() -> None:
    receivers = {r["name"] for r in ALERTMANAGER["receivers"]}
    route = ALERTMANAGER["route"]
    assert route["receiver"] in receivers
    routed = {}
    for sub in route["routes"]:
        assert sub["receiver"] in receivers
        [m] = sub["matchers"]
        routed[re.fullmatch(r'severity="(\w+)"', m).group(1)] = sub["receiver"]
    assert set(routed) == {"info", "warning", "critical"}
    assert routed["critical"] != routed["warning"]
    for r in ALERTMANAGER["receivers"]:
        for w in r.get("webhook_configs", []):
            assert_reachable(w["url"], f"alertmanager receiver {r['name']}")


def test_grafana_datasources_and_dashboards_are_wired() -> None:
    uids = {d["uid"]: d for d in DATASOURCES["datasources"]}
    assert {uids["prometheus"]["type"], uids["jaeger"]["type"]} == {"prometheus", "jaeger"}
    for d in uids.values():
        assert_reachable(d["url"], f"grafana datasource {d['name']}")
    titles = set()
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        titles.add(dash["title"])
        assert dash["panels"], path.name
        for panel in dash["panels"]:
            assert panel["datasource"]["uid"] in uids and panel["targets"], f"{path.name}: {panel['title']}"
            for t in panel["targets"]:
                assert t["expr"].strip(), f"{path.name}: {panel['title']}"
    assert titles == {"RAG performance", "RAG answer quality", "RAG cost and tokens", "RAG system health"}
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/dashboards.yaml").read_text())
    mounts = {m.split(":")[1]: m.split(":")[0] for m in SERVICES["grafana"]["volumes"]}
    dash_dir = provider["providers"][0]["options"]["path"]
    assert (ROOT / mounts[dash_dir]).resolve() == (ROOT / "deploy/grafana/dashboards").resolve()
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dash_dir) and (ROOT / "deploy/grafana/dashboards" / Path(home).name).is_file()


# --- docker-compose.yml and the Dockerfile ----------------------------------------------------

def test_compose_services_volumes_and_health_checks() -> None:
    assert {"demo-app", "collector", "processor", "jaeger", "prometheus", "alertmanager", "grafana"} <= set(SERVICES)
    proc = SERVICES["processor"]
    assert "container_name" not in proc and "ports" not in proc, "--scale processor=N needs both absent"
    assert "demo --serve-app" in " ".join(SERVICES["demo-app"]["entrypoint"])
    assert SERVICES["demo-app"]["build"]["args"]["EXTRAS"] == "demo"
    assert SERVICES["demo-app"]["build"]["dockerfile"] == SERVICES["processor"]["build"]["dockerfile"]
    env = SERVICES["demo-app"]["environment"]
    assert_reachable(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "demo-app OTLP endpoint")
    named = set(COMPOSE["volumes"])
    for name, svc in SERVICES.items():
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                assert (ROOT / src).exists(), f"{name}: mounts missing {src}"
            else:
                assert src in named, f"{name}: volume {src} is not declared"
        for dep in svc.get("depends_on", {}):
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
        # the collector image is FROM scratch: nothing to run a probe with (docs/deploy.md)
        if name not in ("collector", "processor"):
            assert "healthcheck" in svc, f"{name} has no health check"
        for mapping in svc.get("ports", []):  # "host:container": the container side must be served
            assert int(mapping.split(":")[-1]) in LISTENING[name], f"{name}: publishes {mapping}, not served"
        hc = " ".join(svc.get("healthcheck", {}).get("test", []))
        if m := re.search(r"http://127\.0\.0\.1:(\d+)", hc):
            assert int(m.group(1)) in LISTENING[name], f"{name}: health check on a port it does not serve"
    assert {"prometheus-data", "grafana-data", "alertmanager-data", "postgres-data", "lake-data"} <= named
    config_file = re.search(r"\$\{OTELCOL_CONFIG:-([\w.-]+)\}", SERVICES["collector"]["command"][0]).group(1)
    assert (ROOT / "collector-config" / config_file).is_file()
    mounts = dict(v.split(":")[:2] for v in SERVICES["prometheus"]["volumes"])
    assert mounts["./deploy/prometheus"] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in SERVICES["prometheus"]["command"]
    am_mounts = dict(v.split(":")[:2] for v in SERVICES["alertmanager"]["volumes"])
    am_conf = next(c.split("=", 1)[1] for c in SERVICES["alertmanager"]["command"] if c.startswith("--config.file"))
    assert am_mounts["./deploy/alertmanager/alertmanager.yml"] == am_conf
    proc_mounts = dict(v.split(":")[:2] for v in proc["volumes"])
    assert proc_mounts["./processors/rag-otel.yaml"] == "/etc/rag-otel/rag-otel.yaml"


def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "processors" / "Dockerfile").read_text().replace("\\\n", " ")
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in text.splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def test_dockerfile_installs_the_processor_extra_as_non_root_with_a_health_check() -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    for op, arg in steps:
        if op == "COPY":
            for src in shlex.split(arg)[:-1]:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    assert ("ARG", "EXTRAS=fleet") in steps  # the default image is the processor's, with the fleet store
    assert any(op == "RUN" and "chown rag /var/lib/rag-otel-lake" in arg for op, arg in steps)
    assert any(op == "RUN" and 'pip install ".[${EXTRAS}]"' in arg for op, arg in steps)
    user = [arg for op, arg in steps if op == "USER"]
    assert user and user[-1] not in ("root", "0")
    proc = load_config(PROCESSOR_CONFIG).processor
    exposed = {int(p) for op, arg in steps if op == "EXPOSE" for p in arg.split()}
    assert exposed == {hostport(a)[1] for a in (proc.otlp_grpc, proc.otlp_http, proc.http)}
    [hc] = [arg for op, arg in steps if op == "HEALTHCHECK"]
    assert f"http://127.0.0.1:{hostport(proc.http)[1]}/health" in hc
    copied = {shlex.split(arg)[-1] for op, arg in steps if op == "COPY"}
    cmd = json.loads(next(arg for op, arg in steps if op == "CMD"))
    assert cmd[cmd.index("--config") + 1] in copied
    assert [json.loads(arg) for op, arg in steps if op == "ENTRYPOINT"] == [["rag-otel", "serve"]]
