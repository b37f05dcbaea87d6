"""The settings of the work: limits, usage, upstream calls, jobs, tools, idempotency."""

from __future__ import annotations

from dataclasses import dataclass

from lowart.settings.declare import (
    boolean,
    currency,
    integer,
    number,
    secret,
    setting,
    text,
    time_zone,
)

MIB = 1024 * 1024


@dataclass(frozen=True)
class LimitSettings:
    """The RPM limit and the token quota."""

    rpm_window_s: float = setting(
        "RPM_WINDOW_S", 60.0, number, "the sliding window of the RPM limit"
    )
    tpm_window_s: float = setting(
        "TPM_WINDOW_S", 60.0, number, "the sliding window of the TPM (tokens per minute) limits"
    )
    quota_default_reserve: int = setting(
        "QUOTA_DEFAULT_RESERVE",
        1000,
        integer,
        "tokens reserved for a request without `max_tokens`",
    )
    quota_lease_s: float = setting(
        "QUOTA_LEASE_S",
        900.0,
        number,
        "with `REDIS_URL`: how long a reservation is held for an instance that may have died",
    )
    quota_pending_ttl_s: float = setting(
        "QUOTA_PENDING_TTL_S",
        600.0,
        number,
        "with `REDIS_URL`: how long usage not yet written is held for an instance that may have "
        "died",
    )


@dataclass(frozen=True)
class MoneySettings:
    """Prices, costs and budgets (docs/api.md, "Prices and cost")."""

    currency: str = setting(
        "CURRENCY",
        "USD",
        currency,
        "the currency of prices, costs and budgets, shown beside every amount (amounts are "
        "stored as integer micro-units of it)",
    )
    budget_tz: str = setting(
        "BUDGET_TZ",
        "UTC",
        time_zone,
        "the time zone of budget periods: where a `day`, a `week` (from Monday) and a `month` "
        "begin",
    )
    webhook_url: str | None = setting(
        "BUDGET_WEBHOOK_URL",
        None,
        text,
        "where budget alerts (80 % and 100 % of a budget in a period) are POSTed; none: no alerts",
    )
    webhook_secret: str | None = setting(
        "BUDGET_WEBHOOK_SECRET",
        None,
        secret(16),
        "the HMAC-SHA256 key of the alerts' `x-lowart-signature` header (needed with the URL)",
    )
    webhook_retry_s: float = setting(
        "BUDGET_WEBHOOK_RETRY_S",
        5.0,
        number,
        "how often crossings are looked for and alerts delivered; a failed delivery waits this, "
        "doubled at each failure (at most 60 times this)",
    )
    webhook_timeout_s: float = setting(
        "BUDGET_WEBHOOK_TIMEOUT_S", 10.0, number, "how long one alert delivery may take"
    )


@dataclass(frozen=True)
class UsageSettings:
    """How usage rows are written, and checkpointed while a stream runs."""

    flush_ms: int = setting(
        "USAGE_FLUSH_MS", 100, integer, "how often usage rows are written in a batch"
    )
    inflight_checkpoint_s: float = setting(
        "INFLIGHT_CHECKPOINT_S",
        1.0,
        number,
        "how often the streams in flight longer than this are checkpointed, so a killed process "
        'loses at most this much of their billing (docs/operations.md, "Requests in flight")',
    )


@dataclass(frozen=True)
class LivenessSettings:
    """How an instance shows it is alive, and when another is taken for dead."""

    heartbeat_s: float = setting(
        "INSTANCE_HEARTBEAT_S", 5.0, number, "how often a process renews its heartbeat"
    )
    dead_after_s: float = setting(
        "INSTANCE_DEAD_AFTER_S",
        30.0,
        number,
        "how old a heartbeat is when its instance is taken for dead and its streams in flight "
        "are billed from their checkpoints",
    )


@dataclass(frozen=True)
class UpstreamSettings:
    """The connections to the vendors (and to MCP servers over HTTP)."""

    pool_size: int = setting(
        "UPSTREAM_POOL_SIZE",
        1024,
        integer,
        "upstream connections kept per process (also the most concurrent upstream calls)",
    )
    max_body_bytes: int = setting(
        "UPSTREAM_MAX_BODY_BYTES",
        32 * MIB,
        integer,
        "the largest upstream body read whole into memory (a non-streamed answer, an error body, "
        "a ComfyUI answer or output file); a larger one, by its `Content-Length` or counted while "
        "read, ends the attempt with 502. Streams are relayed, not held, so it does not apply to "
        "them",
    )
    embeddings_max_answer_bytes: int = setting(
        "EMBEDDINGS_MAX_ANSWER_BYTES",
        160 * MIB,
        integer,
        "the largest upstream `/v1/embeddings` answer read whole (instead of "
        "`UPSTREAM_MAX_BODY_BYTES`): 2,048 vectors of 3,072 floats as JSON fit; a larger one "
        "ends the attempt with 502",
    )
    allow_private: bool = setting(
        "UPSTREAM_ALLOW_PRIVATE",
        True,
        boolean,
        "upstreams (model `base_url`s, MCP servers over HTTP) on loopback and private networks "
        "are allowed; `false` refuses them. Link-local and cloud metadata addresses are always "
        'refused, at registration and at connect time (docs/operations.md, "Outbound '
        'connections")',
    )


@dataclass(frozen=True)
class RetrySettings:
    """Retries of one model, and the budget of one request across its fallbacks."""

    retries: int = setting(
        "RETRIES",
        1,
        integer,
        "extra tries of the same model after a connection error, timeout, 5xx or 429",
    )
    backoff_ms: int = setting(
        "RETRY_BACKOFF_MS",
        200,
        integer,
        "the first backoff (exponential, with jitter) between those tries",
    )
    backoff_max_ms: int = setting(
        "RETRY_BACKOFF_MAX_MS", 2000, integer, "the longest backoff between those tries"
    )
    after_max_s: float = setting(
        "RETRY_AFTER_MAX_S",
        0.0,
        number,
        "an upstream 429's `Retry-After` is waited out only up to this; longer ones fall back at "
        "once",
    )
    max_attempts: int = setting(
        "MAX_ATTEMPTS", 6, integer, "upstream attempts per request, across the whole fallback chain"
    )
    request_timeout_s: float = setting(
        "REQUEST_TIMEOUT_S",
        900.0,
        number,
        "the deadline of one request, retries and fallbacks included",
    )


@dataclass(frozen=True)
class CircuitSettings:
    """A model that keeps failing is skipped for a while, then probed."""

    window_s: float = setting(
        "CIRCUIT_WINDOW_S", 30.0, number, "the window a model's failure ratio is measured over"
    )
    min_calls: int = setting(
        "CIRCUIT_MIN_CALLS", 5, integer, "calls in the window before the ratio counts"
    )
    failure_ratio: float = setting(
        "CIRCUIT_FAILURE_RATIO",
        0.5,
        number,
        "a model whose failure ratio over the window reaches this is skipped for the cooldown",
    )
    cooldown_s: float = setting(
        "CIRCUIT_COOLDOWN_S",
        30.0,
        number,
        "how long a failing model is skipped before it is probed",
    )


@dataclass(frozen=True)
class RoutingSettings:
    """How a model with several deployments spreads its requests (docs/api.md, "Deployments")."""

    latency_window_s: float = setting(
        "ROUTING_LATENCY_WINDOW_S",
        60.0,
        number,
        "the window a deployment's recent time to first byte is measured over (`latency` strategy)",
    )
    explore: float = setting(
        "ROUTING_EXPLORE",
        0.05,
        number,
        "the share of requests a `latency` model sends by weight instead, so a recovered "
        "deployment is measured again",
    )
    cooling_s: float = setting(
        "ROUTING_COOLING_S",
        5.0,
        number,
        "how long a deployment answering 429 without `Retry-After` gets no requests",
    )


@dataclass(frozen=True)
class JobSettings:
    """Asynchronous jobs."""

    concurrency: int = setting("JOB_CONCURRENCY", 4, integer, "jobs one process runs at once")
    lease_s: float = setting("JOB_LEASE_S", 30.0, number, "a running job's lease")
    heartbeat_s: float = setting(
        "JOB_HEARTBEAT_S", 10.0, number, "how often a running job's lease is renewed"
    )
    poll_s: float = setting("JOB_POLL_S", 0.5, number, "how often new jobs are looked for")


@dataclass(frozen=True)
class ToolSettings:
    """The tool loop and its MCP servers."""

    max_rounds: int = setting("MAX_TOOL_ROUNDS", 8, integer, "model rounds of one tool loop")
    session_ttl_s: float = setting(
        "TOOL_SESSION_TTL_S",
        900.0,
        number,
        "how long a paused tool call waits for its confirmation",
    )
    mcp_call_timeout_s: float = setting(
        "MCP_CALL_TIMEOUT_S", 30.0, number, "the timeout of one MCP tool call"
    )


@dataclass(frozen=True)
class IdempotencySettings:
    """Requests sent with an Idempotency-Key header."""

    ttl_s: float = setting(
        "IDEMPOTENCY_TTL_S",
        86400.0,
        number,
        "how long the answer of a request sent with an `Idempotency-Key` is replayed to a retry "
        'with the same key (docs/api.md, "Idempotency-Key")',
    )
    lease_s: float = setting(
        "IDEMPOTENCY_LEASE_S",
        30.0,
        number,
        "a running keyed request's claim, renewed every third of it (an instance that died "
        "frees its keys after it)",
    )


DAY = 86400.0


@dataclass(frozen=True)
class RetentionSettings:
    """How long rows are kept: the sweeper deletes older ones in small batches (`0`: forever)."""

    usage_s: float = setting(
        "USAGE_RETENTION_S",
        0.0,
        number,
        "how long usage rows are kept (`0`: forever; the quota counters are not affected)",
        shown="`0` (forever)",
    )
    jobs_s: float = setting(
        "JOB_RETENTION_S",
        30 * DAY,
        number,
        "how long a finished job (completed, failed or cancelled) and its result are kept after "
        "its last change (`0`: forever)",
        shown="`2592000` (30 days)",
    )
    files_s: float = setting(
        "FILE_RETENTION_S",
        7 * DAY,
        number,
        "how long a stored file (row and bytes) is kept after it was made (`0`: forever)",
        shown="`604800` (7 days)",
    )
    tool_sessions_s: float = setting(
        "TOOL_SESSION_RETENTION_S",
        7 * DAY,
        number,
        "how long a tool confirmation session is kept after its last change, once past its "
        "expiry (`0`: forever)",
        shown="`604800` (7 days)",
    )
    request_logs_s: float = setting(
        "REQUEST_LOG_RETENTION_S",
        30 * DAY,
        number,
        "how long request logs are kept (`0`: forever)",
        shown="`2592000` (30 days)",
    )
    sweep_s: float = setting(
        "RETENTION_SWEEP_S",
        600.0,
        number,
        "how often the retention sweeper runs (it also refreshes the table size gauges)",
    )
    batch: int = setting(
        "RETENTION_BATCH",
        500,
        integer,
        "rows deleted per transaction by the sweeper (small batches keep writes flowing)",
    )
    pause_s: float = setting(
        "RETENTION_PAUSE_S",
        0.05,
        number,
        "the pause between two batches, so the sweeper never holds the database for long",
    )


@dataclass(frozen=True)
class ResponseSettings:
    """The Responses API's stored responses."""

    retention_s: float = setting(
        "RESPONSES_RETENTION_S",
        30 * 86400.0,
        number,
        "how long a stored response (`store` true) can be read and continued with "
        '`previous_response_id` (docs/api.md, "Responses")',
    )
    max_history: int = setting(
        "RESPONSES_MAX_HISTORY",
        1000,
        integer,
        "the most earlier responses a `previous_response_id` chain may reach back through",
    )


@dataclass(frozen=True)
class TransformSettings:
    """The sandboxed transform scripts and the worker processes that run them."""

    workers: int = setting(
        "TRANSFORM_WORKERS",
        2,
        integer,
        "worker processes per gateway process that run transform scripts (started when the "
        "first script is loaded, replaced when one dies)",
    )
    timeout_ms: int = setting(
        "TRANSFORM_TIMEOUT_MS",
        50,
        integer,
        "how long one script call (or a module's top-level code) may run; the interpreter "
        'cancels it past this (docs/transforms.md, "Limits")',
    )
    memory_mb: int = setting(
        "TRANSFORM_MEMORY_MB",
        512,
        integer,
        "the address-space limit of each transform worker; a script that allocates past it "
        "kills its worker, which is replaced",
    )
    kill_after_ms: int = setting(
        "TRANSFORM_KILL_AFTER_MS",
        1000,
        integer,
        "a worker that has not answered this long after a call's time limit is killed and "
        "replaced (a call stuck where the interpreter cannot cancel it)",
    )
    start_timeout_s: float = setting(
        "TRANSFORM_START_TIMEOUT_S",
        10.0,
        number,
        "how long a worker may take to start (the interpreter imported, its limits set), and "
        "how long a call waits for one while none is up",
    )
