"""Chat and image jobs: whether a stored request may run again, billed once even across crashes.

A chat job cut off mid-call by a crash is run again once. If the cut-off attempt had already been
billed (its usage row was written), it is failed instead, so that it is never billed twice. The
run itself is the pipeline's (``pipeline/job_executor.py``).
"""

from __future__ import annotations

from lowart.errors import LowartError
from lowart.storage.jobs import JobRow
from lowart.storage.usage import UsageRepository

MAX_RUNS = 2  # the first run, and one more after a crash


async def check_rerun(job: JobRow, usage: UsageRepository) -> None:
    """Refuse a run after a crash that would run the job a third time, or bill it twice."""
    if job.attempts > MAX_RUNS:
        raise LowartError("The job was interrupted twice; it is not run again.")
    if (await usage.count_by_status(job.job_id)).get("ok"):
        raise LowartError(
            "The job was interrupted after its answer was billed; "
            "it is not run again, so that it is not billed twice."
        )
