"""SQLAlchemy Core tables: one per concept of docs/architecture.md, "Data model"."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

_now = sa.text("CURRENT_TIMESTAMP")

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("is_admin", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'active'")),
    sa.Column("rpm_limit", sa.Integer, nullable=True),
    sa.Column("token_quota", sa.BigInteger, nullable=True),
    sa.Column("token_used", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("models", sa.Text, nullable=True),  # JSON list of model ids; NULL means all
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("budget", sa.BigInteger, nullable=True),  # micro-units of CURRENCY; NULL: none
    sa.Column("budget_period", sa.Text, nullable=False, server_default=sa.text("'month'")),
    sa.Column("tpm_limit", sa.Integer, nullable=True),
    sa.Column("team_id", sa.Text, nullable=True, index=True),  # at most one team
    sa.Column("token_quota_period", sa.Text, nullable=False, server_default=sa.text("'total'")),
)

# A team of users with limits of its own (docs/api.md, "Teams").
teams = sa.Table(
    "teams",
    metadata,
    sa.Column("team_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("models", sa.Text, nullable=True),  # JSON list; NULL: every model
    sa.Column("rpm_limit", sa.Integer, nullable=True),
    sa.Column("tpm_limit", sa.Integer, nullable=True),
    sa.Column("token_quota", sa.BigInteger, nullable=True),  # tokens in total
    sa.Column("budget", sa.BigInteger, nullable=True),  # micro-units of CURRENCY
    sa.Column("budget_period", sa.Text, nullable=False, server_default=sa.text("'month'")),
    sa.Column("created_at", sa.Float, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, sa.ForeignKey("users.user_id"), nullable=False, index=True),
    sa.Column("key_hash", sa.Text, nullable=False, unique=True),
    sa.Column("prefix", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("budget", sa.BigInteger, nullable=True),  # micro-units of CURRENCY; NULL: none
    sa.Column("budget_period", sa.Text, nullable=False, server_default=sa.text("'month'")),
    # the key's own limits, within its user's (docs/api.md, "Keys and their limits")
    sa.Column("rpm_limit", sa.Integer, nullable=True),
    sa.Column("tpm_limit", sa.Integer, nullable=True),
    sa.Column("models", sa.Text, nullable=True),  # JSON list; NULL: the user's
    sa.Column("expires_at", sa.Float, nullable=True),  # Unix seconds; NULL: never
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("model_id", sa.Text, primary_key=True),
    sa.Column("vendor_type", sa.Text, nullable=False),
    sa.Column("base_url", sa.Text, nullable=False, server_default=sa.text("''")),
    sa.Column("api_key", sa.Text, nullable=True),
    sa.Column("upstream_model", sa.Text, nullable=True),
    sa.Column("params", sa.Text, nullable=True),  # JSON object
    sa.Column("timeout_s", sa.Float, nullable=False, server_default=sa.text("600")),
    sa.Column("enabled", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

deployments = sa.Table(  # docs/api.md "Deployments": a model's further upstreams
    "deployments",
    metadata,
    sa.Column("model_id", sa.Text, primary_key=True),
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("vendor_type", sa.Text, nullable=False),
    sa.Column("base_url", sa.Text, nullable=False, server_default=sa.text("''")),
    sa.Column("api_key", sa.Text, nullable=True),
    sa.Column("upstream_model", sa.Text, nullable=True),
    sa.Column("params", sa.Text, nullable=True),  # JSON object
    sa.Column("weight", sa.Float, nullable=False, server_default=sa.text("1")),
    sa.Column("enabled", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("rpm_cap", sa.Integer, nullable=True),
    sa.Column("tpm_cap", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

model_fallbacks = sa.Table(
    "model_fallbacks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("primary_model_id", sa.Text, nullable=False, index=True),
    sa.Column("fallback_model_id", sa.Text, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

gateway_meta = sa.Table(
    "gateway_meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

usage_records = sa.Table(
    "usage_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.Text, nullable=False, index=True),
    sa.Column("user_id", sa.Text, nullable=False, index=True),
    sa.Column("key_id", sa.Text, nullable=True),
    sa.Column("requested_model", sa.Text, nullable=False),
    sa.Column("served_model", sa.Text, nullable=False),
    sa.Column("deployment", sa.Text, nullable=True),  # docs/api.md "Deployments"
    sa.Column("prompt_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("completion_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("estimated", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("ttft_ms", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),  # Unix seconds, UTC
    # docs/api.md, "Prices and cost": cache tokens are part of prompt_tokens; cost in micro-units
    sa.Column("cache_read_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("cache_write_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("cost", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("team_id", sa.Text, nullable=True),  # the user's team when the row was written
)

# What each budget has spent per period (docs/api.md, "Budgets"), added to as rows are written.
budget_spend = sa.Table(
    "budget_spend",
    metadata,
    sa.Column("scope", sa.Text, primary_key=True),  # user | key | team
    sa.Column("owner", sa.Text, primary_key=True),  # its id
    sa.Column("period", sa.Text, primary_key=True),  # "2026-12-08", "2026-W50", "2026-12", "total"
    sa.Column("spent", sa.BigInteger, nullable=False, server_default=sa.text("0")),
)

# Budget alerts to deliver to BUDGET_WEBHOOK_URL, one per (budget, period, threshold).
budget_alerts = sa.Table(
    "budget_alerts",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),  # the idempotency id the receiver sees
    sa.Column("payload", sa.Text, nullable=False),  # the JSON body, as signed
    sa.Column("status", sa.Text, nullable=False),  # pending | delivered
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("next_at", sa.Float, nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float, nullable=True),
)

# A model's prices from a time on, in micro-units of CURRENCY (docs/api.md, "Prices and cost").
model_prices = sa.Table(
    "model_prices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Text, nullable=False, index=True),
    sa.Column("effective_from", sa.Float, nullable=False),  # Unix seconds, UTC
    sa.Column("input", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("output", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("cache_read", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("cache_write", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("image", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("embedding", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.UniqueConstraint("model_id", "effective_from", name="uq_model_prices_model_from"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("job_id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False, index=True),
    sa.Column("key_id", sa.Text, nullable=True),
    sa.Column("kind", sa.Text, nullable=False),  # chat | images
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'pending'"), index=True),
    sa.Column("progress", sa.Float, nullable=False, server_default=sa.text("0")),
    sa.Column("request", sa.Text, nullable=False),  # JSON: the caller's body and its format
    sa.Column("result", sa.Text, nullable=True),  # JSON
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("upstream_ref", sa.Text, nullable=True),  # e.g. a ComfyUI prompt_id
    sa.Column("session_id", sa.Text, nullable=True),  # a tool confirmation it waits for
    sa.Column("lease_owner", sa.Text, nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("file_id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False, index=True),
    sa.Column("job_id", sa.Text, nullable=True),
    sa.Column("path", sa.Text, nullable=False),  # relative to FILES_DIR
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

mcp_servers = sa.Table(
    "mcp_servers",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("transport", sa.Text, nullable=False),  # stdio | http
    sa.Column("command", sa.Text, nullable=True),
    sa.Column("args", sa.Text, nullable=True),  # JSON list
    sa.Column("env", sa.Text, nullable=True),  # encrypted JSON object
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("headers", sa.Text, nullable=True),  # encrypted JSON object
    sa.Column("created_at", sa.Float, nullable=False),
)

tool_policies = sa.Table(
    "tool_policies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tool_name", sa.Text, nullable=False),
    sa.Column("server", sa.Text, nullable=True),
    sa.Column("user_id", sa.Text, nullable=True),
    sa.Column("policy", sa.Text, nullable=False),  # auto | confirm | block
    sa.Column("created_at", sa.Float, nullable=False),
)

tool_sessions = sa.Table(
    "tool_sessions",
    metadata,
    sa.Column("session_id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False, index=True),
    sa.Column("job_id", sa.Text, nullable=True),
    sa.Column("state", sa.Text, nullable=False),  # JSON: the conversation and what it needs
    sa.Column("pending", sa.Text, nullable=False),  # JSON: the calls awaiting a decision
    sa.Column("status", sa.Text, nullable=False),  # pending | confirming | done | expired
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

tool_audit = sa.Table(
    "tool_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.Text, nullable=False),
    sa.Column("session_id", sa.Text, nullable=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("server", sa.Text, nullable=False),
    sa.Column("tool", sa.Text, nullable=False),
    sa.Column("arguments_sha256", sa.Text, nullable=False),
    sa.Column("policy", sa.Text, nullable=False),
    sa.Column("approver", sa.Text, nullable=True),
    sa.Column("outcome", sa.Text, nullable=False),  # ok | error | blocked | rejected
    sa.Column("result_bytes", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Requests in flight, checkpointed by the usage writer (docs/operations.md, "Requests in flight").
inflight_requests = sa.Table(
    "inflight_requests",
    metadata,
    sa.Column("request_id", sa.Text, primary_key=True),
    sa.Column("instance_id", sa.Text, nullable=False, index=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("key_id", sa.Text, nullable=True),
    sa.Column("requested_model", sa.Text, nullable=False),
    sa.Column("served_model", sa.Text, nullable=False),
    sa.Column("reservation_id", sa.Text, nullable=False, server_default=sa.text("''")),
    sa.Column("reserved_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("completion_tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("started_at", sa.Float, nullable=False),  # Unix seconds, UTC
    sa.Column("updated_at", sa.Float, nullable=False),  # the last checkpoint
)

# One row per running gateway process, renewed every INSTANCE_HEARTBEAT_S.
instances = sa.Table(
    "instances",
    metadata,
    sa.Column("instance_id", sa.Text, primary_key=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)

idempotency_keys = sa.Table(  # docs/api.md "Idempotency-Key"
    "idempotency_keys",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("route", sa.Text, nullable=False),
    sa.Column("body_sha256", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # running | done
    sa.Column("owner", sa.Text, nullable=True),  # the running request's instance and claim
    sa.Column("lease_until", sa.Float, nullable=False),
    sa.Column("answer_status", sa.Integer, nullable=True),  # 0: a stream, never replayed
    sa.Column("answer_headers", sa.Text, nullable=True),  # JSON list of [name, value]
    sa.Column("answer_body", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

responses = sa.Table(  # docs/api.md "Responses"
    "responses",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),  # resp_…
    sa.Column("user_id", sa.Text, nullable=False, index=True),
    sa.Column("model", sa.Text, nullable=False),  # the model the caller asked for
    sa.Column("previous_response_id", sa.Text, nullable=True),
    sa.Column("input_items", sa.LargeBinary, nullable=False),  # JSON: this turn's input items
    sa.Column("response", sa.LargeBinary, nullable=False),  # JSON: the Response object
    sa.Column("job_id", sa.Text, nullable=True),  # a background response's job
    sa.Column("session_id", sa.Text, nullable=True),  # a pause's tool session (approvals)
    sa.Column("deployment", sa.Text, nullable=True),  # the deployment that served it (0008)
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

# A Starlark script run on a model's requests and answers (docs/transforms.md); model_id NULL:
# every model without a script of its own. deployment: reserved (no deployments yet).
transforms = sa.Table(
    "transforms",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Text, nullable=True, index=True),
    sa.Column("deployment", sa.Text, nullable=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("on_request", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("on_response", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("on_chunk", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("on_error", sa.Text, nullable=False, server_default=sa.text("'fail'")),  # | skip
    sa.Column("enabled", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

# One row per admin write (docs/operations.md, "Admin audit log"); kept until deleted by hand.
admin_audit = sa.Table(
    "admin_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),  # Unix seconds, UTC
    sa.Column("actor", sa.Text, nullable=False, index=True),  # the admin's user id, or "cli"
    sa.Column("actor_key_id", sa.Text, nullable=True),  # the admin key used (None: the CLI)
    sa.Column("action", sa.Text, nullable=False, index=True),  # e.g. users.create
    sa.Column("target", sa.Text, nullable=True, index=True),  # the changed object's id
    sa.Column("changes", sa.Text, nullable=False),  # JSON {field: {"from", "to"}}, secrets ***
    sa.Column("client_address", sa.Text, nullable=True),
    sa.Column("request_id", sa.Text, nullable=True),
)

# docs/operations.md, "Request logs": opt-in bodies, already redacted and capped. A table of its
# own that authentication never reads, so its size cannot slow a key check.
request_logs = sa.Table(
    "request_logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.Text, nullable=False, index=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False, index=True),  # Unix seconds, UTC
    sa.Column("status", sa.Text, nullable=False),  # ok | error | partial | cancelled
    sa.Column("http_status", sa.Integer, nullable=False),
    sa.Column("stream", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("request_body", sa.Text, nullable=False),
    sa.Column("response_body", sa.Text, nullable=False),
    sa.Column("request_bytes", sa.BigInteger, nullable=False),  # as received, before redaction
    sa.Column("response_bytes", sa.BigInteger, nullable=False),  # as sent
    sa.Column("truncated", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Index("ix_request_logs_user_created", "user_id", "created_at"),
    sa.Index("ix_request_logs_model_created", "model", "created_at"),
)
