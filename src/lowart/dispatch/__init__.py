"""One chat request's flow: admission → chain → provider → relay → usage."""
