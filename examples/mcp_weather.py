"""A small MCP server on the official SDK, for the README's confirmation walk-through and the tests.

Run it over stdio (how the gateway starts it)::

    python examples/mcp_weather.py

or over streamable HTTP at ``http://127.0.0.1:PORT/mcp``::

    python examples/mcp_weather.py --http PORT

Register it with the gateway as a stdio server whose ``command`` is ``python`` and whose
``args`` are ``["examples/mcp_weather.py"]``. Its tools:

- ``get_weather(city)``: a harmless lookup with a deterministic answer (a policy of ``auto``);
- ``delete_file(path)``: a *pretend* dangerous tool for the ``confirm`` walk-through; it never
  touches the filesystem;
- ``slow(seconds)``: sleeps, to exercise call timeouts;
- ``crash()``: kills its own process mid-call, to exercise a tool server dying;
- ``echo(text)``: returns its argument;
- ``env(name)``, ``pid()`` and ``header(name)``: report the process's environment variable, its
  process id and an HTTP request header, so tests can check what the gateway passed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("weather", instructions="Weather lookups, plus test tools for the gateway.")


@server.tool()
def get_weather(city: str) -> str:
    """Tell the current weather in a city."""
    return f"It is 18C and sunny in {city}."


@server.tool()
def delete_file(path: str) -> str:
    """Delete a file (pretend: nothing on disk is touched; a stand-in for a dangerous tool)."""
    return f"Deleted {path} (pretend)"


@server.tool()
async def slow(seconds: float) -> str:
    """Wait for the given number of seconds, then answer."""
    await asyncio.sleep(seconds)
    return f"Waited {seconds} s."


@server.tool()
def crash() -> str:
    """Kill this server's own process in the middle of the call."""
    os._exit(1)


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def env(name: str) -> str:
    """Return an environment variable of the server process, or an empty string."""
    return os.environ.get(name, "")


@server.tool()
def pid() -> str:
    """Return the server's process id."""
    return str(os.getpid())


@server.tool()
def header(name: str, ctx: Context) -> str:
    """Return an HTTP request header of this call (streamable HTTP only), or an empty string."""
    headers = ctx.headers or {}
    return headers.get(name.lower(), headers.get(name, ""))


def main() -> None:
    """Serve over stdio, or over streamable HTTP with ``--http PORT``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on PORT")
    options = parser.parse_args()
    # On stderr, which the gateway logs line by line (stdout carries the protocol).
    transport = "stdio" if options.http is None else "http"
    sys.stderr.write(f"mcp_weather: serving over {transport}\n")
    sys.stderr.flush()
    if options.http is None:
        server.run()
    else:
        server.run("streamable-http", host="127.0.0.1", port=options.http)


if __name__ == "__main__":
    main()
