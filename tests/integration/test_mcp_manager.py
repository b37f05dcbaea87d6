"""MCPManager against the real example server (examples/mcp_weather.py), over stdio and HTTP."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp.types import CallToolResult, ImageContent, TextContent
from structlog.testing import capture_logs

from lowart.tools.mcp import MCPManager
from lowart.tools.mcp_server import ServerConfig, ToolCallError
from lowart.tools.mcp_session import _log_stderr, result_text

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mcp_weather.py"
TOOLS = {"get_weather", "delete_file", "slow", "crash", "echo", "env", "pid", "header"}
SECRET = "s3cret-value-for-the-child-only"


def weather(name: str = "weather", **env: str) -> ServerConfig:
    return ServerConfig(
        name=name, transport="stdio", command=sys.executable, args=(str(EXAMPLE),), env=env
    )


async def until(predicate: Callable[[], bool], within: float = 15.0) -> None:
    """Wait, bounded, for a state the manager reaches by itself (a restart)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {within} s")
        await asyncio.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def manager() -> AsyncIterator[MCPManager]:
    mcp = MCPManager(call_timeout_s=20, restart_backoff_s=0.05)
    yield mcp
    await mcp.close()


async def test_start_lists_the_tools_with_their_schemas(manager: MCPManager) -> None:
    await manager.start(weather())

    assert manager.status("weather") == "running"
    tools = {tool.name: tool for tool in manager.tools("weather") or []}
    assert set(tools) == TOOLS
    schema = tools["get_weather"].input_schema
    assert schema["type"] == "object"
    assert schema["required"] == ["city"]
    assert schema["properties"]["city"]["type"] == "string"
    assert tools["slow"].input_schema["properties"]["seconds"]["type"] == "number"
    assert "weather" in tools["get_weather"].description


async def test_call_returns_the_text_and_tool_errors_as_text(manager: MCPManager) -> None:
    await manager.start(weather())

    assert await manager.call("weather", "get_weather", {"city": "Paris"}) == (
        "It is 18C and sunny in Paris."
    )
    assert await manager.call("weather", "delete_file", {"path": "/etc/hosts"}) == (
        "Deleted /etc/hosts (pretend)"
    )
    invalid = await manager.call("weather", "get_weather", {})
    assert invalid.startswith("Tool error: ")
    assert "city" in invalid


async def test_a_slow_call_times_out_promptly_and_the_server_keeps_serving() -> None:
    mcp = MCPManager(call_timeout_s=0.5)
    try:
        await mcp.start(weather())
        began = time.monotonic()
        with pytest.raises(ToolCallError, match=r"timed out after 0\.5 s"):
            await mcp.call("weather", "slow", {"seconds": 5})
        assert time.monotonic() - began < 2
        assert await mcp.call("weather", "echo", {"text": "still here"}) == "still here"
    finally:
        await mcp.close()


async def test_a_crash_mid_call_fails_promptly_then_the_server_restarts(
    manager: MCPManager,
) -> None:
    await manager.start(weather())
    first_pid = int(await manager.call("weather", "pid", {}))

    began = time.monotonic()
    with pytest.raises(ToolCallError, match="went away during the call"):
        await manager.call("weather", "crash", {})
    assert time.monotonic() - began < 5  # the call timeout is 20 s
    assert manager.status("weather") == "starting"

    with capture_logs() as logs:
        await until(lambda: manager.status("weather") == "running")
    assert await manager.call("weather", "get_weather", {"city": "Oslo"}) == (
        "It is 18C and sunny in Oslo."
    )
    second_pid = int(await manager.call("weather", "pid", {}))
    assert second_pid != first_pid
    assert not alive(first_pid)
    assert any(log["event"] == "mcp_server_started" for log in logs)


async def test_a_call_during_the_restart_waits_for_the_new_session(manager: MCPManager) -> None:
    await manager.start(weather())
    with pytest.raises(ToolCallError):
        await manager.call("weather", "crash", {})

    assert manager.status("weather") == "starting"
    assert await manager.call("weather", "echo", {"text": "after"}) == "after"


async def test_env_reaches_the_child_and_nothing_else(manager: MCPManager) -> None:
    config = weather(LOWART_MCP_SECRET=SECRET)
    assert SECRET not in repr(config)

    with capture_logs() as logs:
        await manager.start(config)
        assert await manager.call("weather", "env", {"name": "LOWART_MCP_SECRET"}) == SECRET
        assert await manager.call("weather", "env", {"name": "LOWART_NOT_SET"}) == ""
        await manager.stop("weather")

    assert SECRET not in repr(logs)


async def test_the_servers_stderr_goes_to_the_log(manager: MCPManager) -> None:
    with capture_logs() as logs:
        await manager.start(weather())

        def logged() -> bool:
            return any(
                log["event"] == "mcp_server_stderr"
                and log["server"] == "weather"
                and log["line"] == "mcp_weather: serving over stdio"
                for log in logs
            )

        await until(logged, within=5)


async def test_stderr_lines_are_logged_one_by_one_and_long_ones_in_pieces() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        os.write(write_fd, b"first\n\nsecond\n" + b"x" * 9000 + b"\nno newline at the end")
        os.close(write_fd)
        drained = anyio.Event()
        with capture_logs() as logs:
            await _log_stderr("weather", pipe, drained)
    assert drained.is_set()
    lines = [log["line"] for log in logs if log["event"] == "mcp_server_stderr"]
    assert lines[:2] == ["first", "second"]
    assert lines[-1] == "no newline at the end"
    assert "".join(lines[2:-1]) == "x" * 9000
    assert all(len(line) <= 4000 for line in lines)


async def test_a_bad_command_makes_start_fail_with_the_reason(manager: MCPManager) -> None:
    config = ServerConfig(name="ghost", transport="stdio", command="/nonexistent/lowart-mcp")

    with pytest.raises(ToolCallError, match="No such file or directory"):
        await manager.start(config)
    assert manager.status("ghost") is None
    assert manager.tools("ghost") is None

    with pytest.raises(ToolCallError, match="failed to start"):
        await manager.start(config, keep_retrying=True)
    assert manager.status("ghost") == "failed"
    with pytest.raises(ToolCallError, match="is down: FileNotFoundError"):
        await manager.call("ghost", "echo", {"text": "x"})


async def test_an_unknown_server_is_a_tool_call_error(manager: MCPManager) -> None:
    with pytest.raises(ToolCallError, match="No MCP server named 'nobody'"):
        await manager.call("nobody", "echo", {"text": "x"})


async def test_stop_and_close_leave_no_child_process() -> None:
    mcp = MCPManager()
    await mcp.start(weather("one"))
    await mcp.start(weather("two"))
    pid_one = int(await mcp.call("one", "pid", {}))
    pid_two = int(await mcp.call("two", "pid", {}))

    await mcp.stop("one")
    assert not alive(pid_one)
    assert mcp.status("one") is None
    with pytest.raises(ToolCallError):
        await mcp.call("one", "echo", {"text": "x"})

    await mcp.close()
    assert not alive(pid_two)
    assert mcp.status("two") is None


async def test_starting_again_replaces_the_server(manager: MCPManager) -> None:
    await manager.start(weather())
    old_pid = int(await manager.call("weather", "pid", {}))

    await manager.start(weather(LOWART_MCP_SECRET="v2"))

    assert not alive(old_pid)
    assert await manager.call("weather", "env", {"name": "LOWART_MCP_SECRET"}) == "v2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def accepting(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@asynccontextmanager
async def http_server(port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """The example server over streamable HTTP, as its own process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--http",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not await accepting(port):
            assert process.returncode is None, "the example HTTP server exited"
            assert time.monotonic() < deadline, "the example HTTP server did not listen"
            await asyncio.sleep(0.05)
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_http_transport_sends_the_headers_fails_fast_and_reconnects() -> None:
    port = free_port()
    mcp = MCPManager(call_timeout_s=20, restart_backoff_s=0.05)
    url = f"http://127.0.0.1:{port}/mcp"
    config = ServerConfig(name="remote", transport="http", url=url, headers={"X-Token": SECRET})
    assert SECRET not in repr(config)
    try:
        with capture_logs() as logs:
            async with http_server(port) as process:
                await mcp.start(config)
                assert {tool.name for tool in mcp.tools("remote") or []} == TOOLS
                assert await mcp.call("remote", "get_weather", {"city": "Lyon"}) == (
                    "It is 18C and sunny in Lyon."
                )
                assert await mcp.call("remote", "header", {"name": "x-token"}) == SECRET

                process.kill()
                await process.wait()
                began = time.monotonic()
                with pytest.raises(ToolCallError, match="went away during the call"):
                    await mcp.call("remote", "echo", {"text": "x"})
                assert time.monotonic() - began < 5

            async with http_server(port):
                await until(lambda: mcp.status("remote") == "running")
                assert await mcp.call("remote", "header", {"name": "x-token"}) == SECRET
        assert SECRET not in repr(logs)
    finally:
        await mcp.close()


def test_result_text_joins_text_and_summarises_other_parts() -> None:
    result = CallToolResult(
        content=[
            TextContent(text="first"),
            ImageContent(data="aGVsbG8h", mime_type="image/png"),
            TextContent(text="second"),
        ]
    )
    assert result_text(result) == "first\n[image: image/png, 6 bytes]\nsecond"
    failed = CallToolResult(content=[TextContent(text="no such city")], is_error=True)
    assert result_text(failed) == "Tool error: no such city"
    structured = CallToolResult(content=[], structured_content={"temp": 18})
    assert result_text(structured) == '{"temp": 18}'
