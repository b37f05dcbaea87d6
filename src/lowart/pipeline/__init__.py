"""The request pipeline: every operation (chat, messages, images) goes through the same stages,
authenticate → admit → route → run → render → bill, and ends in one of four outcomes; jobs and
gateway-run tools are composed here, so that neither imports the other (docs/architecture.md,
"The request pipeline")."""
