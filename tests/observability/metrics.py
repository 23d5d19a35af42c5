"""Reading metrics as Prometheus does, and the metric list of docs/operations.md."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
# A row of the "Metrics" tables: | `name` | type | labels | process | meaning |
_ROW = re.compile(r"^\| `((?:caseloop|temporal)_[a-z0-9_]+)` \| (\w+) \|([^|]*)\| ([^|]+) \|")


@dataclass(frozen=True)
class Documented:
    name: str
    type: str
    labels: frozenset[str]
    process: str  # "API", "worker" or "worker (SDK)"


def documented_metrics() -> list[Documented]:
    rows = []
    for line in OPERATIONS.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            name, kind, labels, process = match.groups()
            rows.append(
                Documented(
                    name,
                    kind,
                    frozenset(re.findall(r"`([a-z_]+)`", labels)),
                    process.strip(),
                )
            )
    return rows


def family_name(name: str, kind: str) -> str:
    """The family a documented name belongs to (a counter's family drops ``_total``)."""
    return name.removesuffix("_total") if kind == "counter" else name


@dataclass
class Scrape:
    text: str

    def families(self) -> dict[str, str]:
        """Family name -> type, as a scraper parses them."""
        return {f.name: f.type for f in text_string_to_metric_families(self.text)}

    def samples(self, name: str) -> list[Sample]:
        return [
            s
            for f in text_string_to_metric_families(self.text)
            for s in f.samples
            if s.name == name
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples carrying ``labels``."""
        return sum(
            s.value
            for s in self.samples(name)
            if all(s.labels.get(k) == v for k, v in labels.items())
        )


async def scrape(url: str) -> Scrape:
    async with httpx.AsyncClient() as client:
        answer = await client.get(url, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return Scrape(answer.text)


def assert_documented_are_served(served: Scrape, process: str) -> None:
    """Every metric docs/operations.md lists for ``process`` is a family of ``served``, of its
    documented type, and a sample of it has the documented labels where it has samples."""
    expected = [m for m in documented_metrics() if m.process == process]
    assert expected, f"docs/operations.md lists no metric of {process}"
    families = served.families()
    # And the other way round: every caseloop family served is in the docs (tests run the API
    # and workers in one process, so any process's).
    listed = {family_name(m.name, m.type) for m in documented_metrics()}
    undocumented = {name for name in families if name.startswith("caseloop_")} - listed
    assert not undocumented, f"served but not in docs/operations.md: {sorted(undocumented)}"
    for metric in expected:
        family = family_name(metric.name, metric.type)
        assert family in families, f"{metric.name} ({process}) is documented but not served"
        assert families[family] == metric.type, (metric.name, families[family])
        if not metric.name.startswith("caseloop_"):
            continue  # the SDK's carry its own labels (namespace, task queue, ...)
        sampled = metric.name if metric.type != "histogram" else f"{metric.name}_count"
        for sample in served.samples(sampled):
            assert set(sample.labels) == metric.labels, (metric.name, sample.labels)
