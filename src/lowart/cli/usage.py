"""``lowart usage``: the admin usage report (``api/usage.py``), as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import csv
import sys

from lowart.api.usage import usage_filter
from lowart.cli.command import Commands, admin, command
from lowart.cli.output import emit_rows
from lowart.settings import Settings
from lowart.storage.usage import GROUPINGS

TOTALS = ("prompt_tokens", "completion_tokens", "total_tokens", "requests", "errors", "cost")


async def _report(settings: Settings, args: argparse.Namespace) -> None:
    query = {
        "user_id": args.user,
        "team_id": args.team,
        "key_id": args.key,
        "model": args.model,
        "served_model": args.served_model,
        "since": args.since,
        "until": args.until,
    }
    flt = usage_filter(query)
    async with admin(settings) as ops:
        rows = await ops.usage.report(flt, args.group_by)
    columns = ((args.group_by,) if args.group_by else ()) + TOTALS
    if args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        emit_rows(rows, columns, args.json)


def register(commands: Commands) -> None:
    report = command(commands, "usage", "report token usage and cost across users", _report)
    report.add_argument("--user", help="only this user's requests")
    report.add_argument("--team", help="only requests of this team's members")
    report.add_argument("--key", help="only requests made with this key id")
    report.add_argument("--model", help="only requests for this model")
    report.add_argument("--served-model", help="only requests this model answered (a fallback)")
    report.add_argument("--since", help="from this time: ISO 8601 (UTC if no zone) or Unix s")
    report.add_argument("--until", help="before this time: ISO 8601 or Unix seconds")
    report.add_argument("--group-by", choices=GROUPINGS, help="one row per group")
    report.add_argument("--csv", action="store_true", help="print CSV (for spreadsheets)")
