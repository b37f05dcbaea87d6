"""Background tasks are named, started in declared order and stopped in reverse, the one with a
stop hook (the usage recorder) asked to stop only after the others were cancelled."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lowart.providers.registry import VendorTable
from lowart.services import build_services
from lowart.services.background import Background, BackgroundTasks
from lowart.settings import Settings
from lowart.storage.engine import create_engine

MASTER_KEY = "unit-master-key-0123456789abcdefghijklmnop"


def _cancel_requested(name: str) -> bool:
    task = next(t for t in asyncio.all_tasks() if t.get_name() == name)
    return task.cancelling() > 0 or task.done()


async def test_tasks_start_in_order_and_stop_in_reverse_with_the_stop_hook_last() -> None:
    events: list[str] = []
    finish = asyncio.Event()

    def forever(name: str) -> Background:
        async def run() -> None:
            events.append(f"start {name}")
            await asyncio.Event().wait()

        return Background(name, run)

    async def recorder() -> None:
        events.append("start recorder")
        await finish.wait()
        events.append("recorder wrote the rest")

    async def stop_recorder() -> None:
        others = ["refresh", "jobs", "spawned"]
        events.append(f"stop recorder, others cancelled: {all(map(_cancel_requested, others))}")
        finish.set()

    tasks = BackgroundTasks(
        [Background("recorder", recorder, stop=stop_recorder), forever("refresh"), forever("jobs")]
    )
    assert tasks.names == ["recorder", "refresh", "jobs"]
    tasks.start()
    tasks.spawn("spawned", asyncio.Event().wait())
    await asyncio.sleep(0)  # each task runs to its first wait
    await tasks.stop()
    assert events == [
        "start recorder",
        "start refresh",
        "start jobs",
        "stop recorder, others cancelled: True",
        "recorder wrote the rest",
    ]
    assert not [t for t in asyncio.all_tasks() if t.get_name() in {"refresh", "jobs", "spawned"}]


async def test_a_stop_hook_runs_when_the_tasks_never_started() -> None:
    stopped: list[str] = []

    async def stop() -> None:
        stopped.append("recorder")

    tasks = BackgroundTasks([Background("recorder", asyncio.Event().wait, stop=stop)])
    await tasks.stop()  # a command that built the services and closes them: its usage is written
    assert stopped == ["recorder"]


async def test_the_services_declare_their_background_tasks(tmp_path: Path) -> None:
    base = Settings().replace(
        database_url=f"sqlite:///{tmp_path}/lowart.db", lowart_workdir=tmp_path
    )
    declared = ["usage_recorder", "directory_refresh", "job_runner", "watchdog", "liveness"]
    declared += ["retention", "request_logs"]
    for settings, names in [
        (base, declared),
        (base.replace(redis_url="redis://127.0.0.1:6379/0"), [*declared, "invalidations"]),
    ]:
        services = build_services(
            settings, create_engine(settings.database.url), MASTER_KEY, VendorTable()
        )
        try:
            assert services.background.names == names
        finally:
            await services.close()
