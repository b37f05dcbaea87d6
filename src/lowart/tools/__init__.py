"""Gateway-run tools: MCP servers, tool policies, HITL confirmation sessions and the tool loop."""
