"""docs/grafana-dashboard.json queries only series, and labels, that the gateway really exports.

The exported series are computed from the gateway's own ``Metrics`` object: every labelled metric
gets one child, the registry is rendered with ``generate_latest`` and parsed back, and each
sample name keeps the label names it was exported with. The dashboard's PromQL is then tokenized
and parsed just enough to tell metric names from functions, keywords, label names, strings and
durations, and to know which metrics each ``by (...)`` clause applies to.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from lowart.telemetry.metrics import Metrics

DASHBOARD_PATH = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
DATASOURCE_REFS = frozenset({"${datasource}", "$datasource", "${DS_PROMETHEUS}"})

# --- what the gateway exports -------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One exported sample name: the label names it carries and its family's TYPE."""

    labels: frozenset[str]
    kind: str


def exported_series() -> dict[str, Series]:
    """Every sample name the gateway's ``/metrics`` can show, built as ``build_services`` does."""
    metrics = Metrics()
    for metric in vars(metrics).values():
        # A labelled metric exports nothing until a child exists: give each one a child.
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*["x"] * len(metric._labelnames))
    empty = [family.name for family in metrics.registry.collect() if not family.samples]
    assert not empty, f"metrics the test could not populate: {empty}"
    found: dict[str, Series] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            seen = found.get(sample.name)
            labels = frozenset(sample.labels) | (seen.labels if seen else frozenset())
            found[sample.name] = Series(labels, family.type)
    return found


# --- a small PromQL tokenizer and parser ----------------------------------------------------------

_UNIT = r"(?:ms|s|m|h|d|w|y)"
_TOKEN = re.compile(
    rf"""
      (?P<space>\s+)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<variable>\$\{{[^}}]*\}}|\$\w+|\[\[[^\]]*\]\])
    | (?P<range>\[[^\]]*\])
    | (?P<duration>\d+{_UNIT}(?:\d+{_UNIT})*(?![\w.]))
    | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<punct>[(){{}},])
    | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=@])
    """,
    re.VERBOSE,
)
AGGREGATORS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
FUNCTIONS = frozenset(
    """
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes
    clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year
    days_in_month deg delta deriv double_exponential_smoothing end exp floor histogram_avg
    histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar
    histogram_sum holt_winters hour idelta increase info irate label_join label_replace
    last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute month pi
    predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn sin
    sinh sort sort_by_label sort_by_label_desc sort_desc sqrt start stddev_over_time
    stdvar_over_time sum_over_time tan tanh time timestamp vector year
    """.split()  # noqa: SIM905 - 80 names read better as words than as a column
)
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})
GROUPING = frozenset({"by", "without"})
MATCHING = frozenset({"on", "ignoring", "group_left", "group_right"})
COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets"})
MATCHER_OPS = frozenset({"=", "!=", "=~", "!~"})


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokenize(expr: str) -> list[Token]:
    """PromQL tokens, without whitespace; strings, durations and ranges stay single tokens."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None or match.lastgroup is None:
            raise ValueError(f"cannot tokenize {expr[pos:]!r}")
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup, match.group()))
        pos = match.end()
    return tokens


@dataclass
class Selector:
    """A vector selector: a metric name and the label names its ``{...}`` matches on."""

    metric: str
    matchers: list[str] = field(default_factory=list)


@dataclass
class Call:
    """A function or aggregation call, with its ``by``/``without`` clause if any."""

    name: str
    args: list[list[Node]]
    grouping: tuple[str, list[str]] | None = None


@dataclass
class Group:
    """A parenthesised sub-expression."""

    items: list[Node]


@dataclass
class Matching:
    """``on``/``ignoring``/``group_left``/``group_right`` and their labels."""

    keyword: str
    labels: list[str]


Node = Selector | Call | Group | Matching


class Parser:
    """Just enough of PromQL to find selectors and the clauses that name labels.

    Operators, numbers, strings outside matchers, durations and Grafana variables are skipped:
    only the structure that tells a metric name from anything else is kept.
    """

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = tokenize(expr)
        self.pos = 0

    def parse(self) -> list[Node]:
        nodes = self.sequence()
        if self.pos != len(self.tokens):
            raise ValueError(f"unexpected {self.peek().text!r} in {self.expr!r}")
        return nodes

    def peek(self, ahead: int = 0) -> Token:
        index = self.pos + ahead
        return self.tokens[index] if index < len(self.tokens) else Token("end", "")

    def take(self, text: str | None = None, kind: str | None = None) -> Token:
        token = self.peek()
        if (text is not None and token.text != text) or (kind is not None and token.kind != kind):
            raise ValueError(f"expected {text or kind!r}, got {token.text!r} in {self.expr!r}")
        self.pos += 1
        return token

    def sequence(self) -> list[Node]:
        """Items up to an unmatched ``)`` or ``,`` (or the end)."""
        nodes: list[Node] = []
        while self.peek().kind != "end" and self.peek().text not in {")", ","}:
            node = self.item()
            if node is not None:
                nodes.append(node)
        return nodes

    def item(self) -> Node | None:
        token = self.peek()
        if token.kind == "ident":
            return self.identifier(token.text)
        self.pos += 1
        if token.text == "(":
            group = Group(self.sequence())
            self.take(")")
            return group
        if token.kind == "punct":  # "{" with no metric name before it, or a stray "}"
            raise ValueError(f"unsupported {token.text!r} in {self.expr!r}")
        return None  # an operator, number, string, duration, range or Grafana variable

    def identifier(self, name: str) -> Node | None:
        following = self.peek(1)
        if name in AGGREGATORS and (following.text == "(" or following.text in GROUPING):
            return self.aggregation()
        if name in MATCHING:
            self.pos += 1
            return Matching(name, self.label_list() if self.peek().text == "(" else [])
        if name in GROUPING:
            raise ValueError(f"{name!r} outside an aggregation in {self.expr!r}")
        if name in KEYWORDS:
            self.pos += 1
            return None
        if following.text == "(":
            if name not in FUNCTIONS:
                raise ValueError(f"unknown PromQL function {name!r} in {self.expr!r}")
            self.pos += 1
            return Call(name, self.arguments())
        self.pos += 1
        return Selector(name, self.matchers() if self.peek().text == "{" else [])

    def aggregation(self) -> Call:
        name = self.take(kind="ident").text
        grouping = self.grouping()
        call = Call(name, self.arguments(), grouping)
        if call.grouping is None:
            call.grouping = self.grouping()
        return call

    def grouping(self) -> tuple[str, list[str]] | None:
        if self.peek().text not in GROUPING:
            return None
        keyword = self.take().text
        return keyword, self.label_list()

    def arguments(self) -> list[list[Node]]:
        self.take("(")
        args: list[list[Node]] = []
        while self.peek().text != ")":
            args.append(self.sequence())
            if self.peek().text != ",":
                break
            self.take(",")
        self.take(")")
        return args

    def label_list(self) -> list[str]:
        self.take("(")
        labels: list[str] = []
        while self.peek().text != ")":
            labels.append(self.take(kind="ident").text)
            if self.peek().text != ",":
                break
            self.take(",")
        self.take(")")
        return labels

    def matchers(self) -> list[str]:
        self.take("{")
        labels: list[str] = []
        while self.peek().text != "}":
            labels.append(self.take(kind="ident").text)
            if self.take(kind="op").text not in MATCHER_OPS:
                raise ValueError(f"bad label matcher in {self.expr!r}")
            self.take(kind="string")
            if self.peek().text != ",":
                break
            self.take(",")
        self.take("}")
        return labels


def walk(nodes: list[Node], outer: tuple[str, ...] = ()) -> Iterator[tuple[Node, tuple[str, ...]]]:
    """Every node, with the names of the calls it sits inside (outermost first)."""
    for node in nodes:
        yield node, outer
        if isinstance(node, Call):
            for arg in node.args:
                yield from walk(arg, (*outer, node.name))
        elif isinstance(node, Group):
            yield from walk(node.items, outer)


def selectors(nodes: list[Node]) -> list[Selector]:
    return [node for node, _ in walk(nodes) if isinstance(node, Selector)]


def call_selectors(call: Call) -> list[Selector]:
    return [s for arg in call.args for s in selectors(arg)]


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects."""
    return {s.metric for s in selectors(Parser(expr).parse())}


def grouping_labels(expr: str) -> set[str]:
    """Labels named in the expression's ``by (...)`` clauses."""
    return {
        label
        for node, _ in walk(Parser(expr).parse())
        if isinstance(node, Call) and node.grouping and node.grouping[0] == "by"
        for label in node.grouping[1]
    }


# --- checks -------------------------------------------------------------------------------------

Problem = str


def label_problems(
    clause: str, labels: list[str], targets: list[Selector], series: dict[str, Series]
) -> list[Problem]:
    return [
        f"{clause} names label {label!r}, which {s.metric} does not have"
        for s in targets
        if s.metric in series
        for label in labels
        if label not in series[s.metric].labels
    ]


def call_problems(call: Call, outer: tuple[str, ...], series: dict[str, Series]) -> list[Problem]:
    inside = call_selectors(call)
    problems: list[Problem] = []
    if call.grouping is not None:
        keyword, labels = call.grouping
        problems += label_problems(f"{call.name} {keyword} (...)", labels, inside, series)
        if "histogram_quantile" in outer and (keyword == "by") != ("le" in labels):
            problems.append(f"{call.name} {keyword} (...) inside histogram_quantile drops 'le'")
    if call.name in COUNTER_FUNCTIONS:
        problems += [
            f"{call.name}() over {s.metric}, a {series[s.metric].kind} sample"
            for s in inside
            if s.metric in series
            and (series[s.metric].kind == "gauge" or s.metric.endswith("_created"))
        ]
    if call.name == "histogram_quantile":
        problems += [
            f"histogram_quantile over {s.metric}, not a _bucket series"
            for s in inside
            if not s.metric.endswith("_bucket")
        ]
    return problems


def expr_problems(expr: str, series: dict[str, Series]) -> list[Problem]:
    """Why a PromQL expression does not fit the exported series (empty when it does)."""
    try:
        nodes = Parser(expr).parse()
    except ValueError as err:
        return [str(err)]
    everything = selectors(nodes)
    problems: list[Problem] = [
        f"unknown metric {s.metric!r}" for s in everything if s.metric not in series
    ]
    for s in everything:
        problems += label_problems(f"{s.metric}{{...}}", s.matchers, [s], series)
    for node, outer in walk(nodes):
        if isinstance(node, Call):
            problems += call_problems(node, outer, series)
        elif isinstance(node, Matching):
            problems += label_problems(f"{node.keyword} (...)", node.labels, everything, series)
    return problems


_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<body>.*)\)\s*$", re.DOTALL)


def variable_problems(query: str, series: dict[str, Series]) -> list[Problem]:
    """A Grafana Prometheus variable query: ``label_values([selector,] label)``."""
    match = _LABEL_VALUES.match(query)
    if match is None:
        return [f"variable query {query!r} is not label_values(...)"]
    selector, _, label = match["body"].rpartition(",")
    label = label.strip()
    if not selector.strip():
        owners = [name for name, s in series.items() if label in s.labels]
        return [] if owners else [f"no exported metric has label {label!r}"]
    problems = expr_problems(selector, series)
    targets = selectors(Parser(selector).parse()) if not problems else []
    return problems + label_problems("label_values", [label], targets, series)


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Top-level panels and those inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield panel, target


def variable_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query
        for text in (query, variable.get("definition")):
            if text:
                yield variable["name"], text


def legend_problems(target: dict[str, Any], series: dict[str, Series]) -> list[Problem]:
    """``{{label}}`` in a legend must be a label the query's result keeps."""
    wanted = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
    kept = grouping_labels(target["expr"]) - {"le"}
    if not kept:  # no aggregation: the selected series' own labels survive
        kept = {label for m in metric_names(target["expr"]) for label in series[m].labels}
    return [f"legend label {label!r} is not in the query's result" for label in wanted - kept]


def dashboard_problems(dashboard: dict[str, Any], series: dict[str, Series]) -> list[Problem]:
    """Every query of the dashboard, checked against the exported series."""
    problems: list[Problem] = []
    for panel, target in panel_queries(dashboard):
        where = f"panel {panel.get('title')!r} {target.get('refId')}"
        found = expr_problems(target["expr"], series)
        found = found or legend_problems(target, series)
        problems += [f"{where}: {problem}" for problem in found]
    for name, query in variable_queries(dashboard):
        problems += [f"variable {name!r}: {p}" for p in variable_problems(query, series)]
    return problems


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def series() -> dict[str, Series]:
    return exported_series()


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text(encoding="utf-8"))
    return loaded


# --- tests --------------------------------------------------------------------------------------


def test_exported_series_are_computed_from_the_gateway(series: dict[str, Series]) -> None:
    # A sanity check of the helper, not the source of truth: histograms and counters expand.
    assert {"gateway_requests_total", "gateway_jobs"} <= series.keys()
    assert "le" in series["http_request_duration_seconds_bucket"].labels
    assert "le" not in series["http_request_duration_seconds_count"].labels
    assert series["gateway_jobs"].kind == "gauge"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.99, sum by (le, model) (rate(a_bucket{model=~"$model"}'
            "[$__rate_interval])))",
            {"a_bucket"},
        ),
        ('sum(rate(x_total{status!~"sum|rate"}[5m] offset 1h)) by (status)', {"x_total"}),
        (
            "max without (instance) (up) / on (job) group_left (version) build_info",
            {"up", "build_info"},
        ),
        ("sum by (model) (increase(b_total[1h30m])) > bool 0.5e3 or vector(0)", {"b_total"}),
        (
            "label_replace(c, 'dst', '$1', 'src', '(.*)') and ignoring (x) d:rule:rate5m",
            {"c", "d:rule:rate5m"},
        ),
        ("rate(e_total[5m:1m]) * 100 unless topk(3, f) @ end()", {"e_total", "f"}),
        ('count_values("value", g) - ${quantile} + $offset', {"g"}),
    ],
)
def test_metric_names_ignore_functions_keywords_labels_strings_and_durations(
    expr: str, names: set[str]
) -> None:
    assert metric_names(expr) == names


def test_dashboard_queries_only_exported_metrics_and_labels(
    dashboard: dict[str, Any], series: dict[str, Series]
) -> None:
    queries = [target["expr"] for _, target in panel_queries(dashboard)]
    used = {name for expr in queries for name in metric_names(expr)}
    assert len(queries) >= 8
    assert used <= series.keys(), sorted(used - series.keys())
    assert dashboard_problems(dashboard, series) == []


def _mutate(key: str, old: str, new: str) -> Callable[[dict[str, Any]], None]:
    """Replace the first ``old`` found in a target's ``key`` (``expr`` or ``legendFormat``)."""

    def mutate(dashboard: dict[str, Any]) -> None:
        for _, target in panel_queries(dashboard):
            if old in target.get(key, ""):
                target[key] = target[key].replace(old, new, 1)
                return
        raise AssertionError(f"no target's {key} contains {old!r}")

    return mutate


def _mutate_expr(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    return _mutate("expr", old, new)


def _mutate_variable(dashboard: dict[str, Any]) -> None:
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "model")
    variable["query"] = "label_values(gateway_requests_total, modle)"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_mutate_expr("gateway_tokens_total", "gateway_tokens_bogus_total"), "unknown metric"),
        (_mutate_expr("max by (status) (gateway_jobs)", "gateway_jobz"), "unknown metric"),
        (_mutate_expr("sum by (reason)", "sum by (reasons)"), "does not have"),
        (_mutate_expr('{from_model=~"$model"}', '{model=~"$model"}'), "does not have"),
        (_mutate_expr("max by (status) (gateway_jobs)", "rate(gateway_jobs[5m])"), "gauge"),
        (_mutate_expr("sum by (le, model)", "sum by (model)"), "drops 'le'"),
        (_mutate_expr("histogram_quantile(0.95, sum by (le) (rate(", "sumby(("), "unknown"),
        (
            _mutate_expr("gateway_upstream_duration_seconds_bucket", "gateway_retries_total"),
            "not a _bucket series",
        ),
        (_mutate("legendFormat", "{{reason}}", "{{model}}"), "legend label"),
        (_mutate_variable, "modle"),
    ],
)
def test_checker_rejects_what_the_gateway_does_not_export(
    dashboard: dict[str, Any],
    series: dict[str, Series],
    mutate: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    broken = copy.deepcopy(dashboard)
    mutate(broken)
    problems = dashboard_problems(broken, series)
    assert problems, "the checker accepted a broken dashboard"
    assert any(expected in problem for problem in problems), problems


@dataclass(frozen=True)
class Topic:
    """A panel the dashboard must have: its title, a series it queries, the labels it splits by."""

    title: str
    metric: str
    by: frozenset[str]


REQUIRED = {
    "traffic": Topic(
        "Model requests/s by model and status",
        "gateway_requests_total",
        frozenset({"model", "status"}),
    ),
    "errors": Topic(
        "Model errors/s by model and status", "gateway_requests_total", frozenset({"status"})
    ),
    "http errors": Topic(
        "HTTP non-2xx responses/s by route and status",
        "http_request_duration_seconds_count",
        frozenset({"route", "status"}),
    ),
    "latency": Topic(
        "Upstream latency p50 / p95 / p99",
        "gateway_upstream_duration_seconds_bucket",
        frozenset({"le"}),
    ),
    "time to first token": Topic(
        "Time to first token p50 / p95 / p99 by model",
        "gateway_time_to_first_token_seconds_bucket",
        frozenset({"le", "model"}),
    ),
    "tokens": Topic(
        "Tokens/s by served model and type (prompt / completion)",
        "gateway_tokens_total",
        frozenset({"served_model", "type"}),
    ),
    "fallbacks": Topic(
        "Fallbacks/s by from and to model",
        "gateway_fallbacks_total",
        frozenset({"from_model", "to_model"}),
    ),
    "rate limits": Topic(
        "Rate-limit refusals/s by reason", "gateway_rate_limited_total", frozenset({"reason"})
    ),
    "jobs": Topic("Jobs by status", "gateway_jobs", frozenset({"status"})),
    "database": Topic("Database bytes by table", "gateway_table_bytes", frozenset({"table"})),
}


@pytest.mark.parametrize("topic", sorted(REQUIRED))
def test_dashboard_has_a_panel_per_topic(dashboard: dict[str, Any], topic: str) -> None:
    wanted = REQUIRED[topic]
    panels = [p for p in all_panels(dashboard) if p.get("title") == wanted.title]
    assert len(panels) == 1, f"no single panel titled {wanted.title!r}"
    exprs = [target["expr"] for target in panels[0]["targets"]]
    assert any(
        wanted.metric in metric_names(expr) and wanted.by <= grouping_labels(expr) for expr in exprs
    ), exprs
    if "p50 / p95 / p99" in wanted.title:
        quantiles = {
            float(q) for e in exprs for q in re.findall(r"histogram_quantile\(([\d.]+)", e)
        }
        assert quantiles >= {0.5, 0.95, 0.99}
    if topic == "errors":
        assert all("status!~" in expr or "status=~" in expr for expr in exprs)


def test_dashboard_shape(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["title"] and dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    has_input = any(i.get("name") == "DS_PROMETHEUS" for i in dashboard.get("__inputs", []))
    datasource = variables.get("datasource", {})
    assert has_input or (datasource.get("type"), datasource.get("query")) == (
        "datasource",
        "prometheus",
    )
    model = variables["model"]
    query = model["query"]["query"] if isinstance(model["query"], dict) else model["query"]
    assert model["type"] == "query" and query.startswith("label_values(")
    assert model["datasource"]["uid"] in DATASOURCE_REFS

    panels = list(all_panels(dashboard))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in DATASOURCE_REFS, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(t["datasource"]["uid"] in DATASOURCE_REFS for t in panel["targets"])


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    boxes = [(p["title"], p["gridPos"]) for p in dashboard["panels"]]
    for index, (title, a) in enumerate(boxes):
        assert a["x"] + a["w"] <= 24, title
        for other, b in boxes[index + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, f"{title!r} overlaps {other!r}"
