"""The HTTP edge: routes per surface, pure ASGI middleware, and error rendering."""
