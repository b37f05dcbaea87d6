"""Pure wire formats: OpenAI and Anthropic payloads and SSE framing, with no I/O."""
