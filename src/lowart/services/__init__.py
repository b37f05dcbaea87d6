"""The composition root's parts: every long-lived service, built from ``Settings`` at start-up.

``master_key`` (where the key comes from, and its check), ``limits`` (in-process or Redis),
``tool_servers`` (the MCP servers kept equal to the registered ones), ``broadcast`` (admin
changes told to the other instances), ``background`` (the named tasks, in declared order),
``composition`` (``Services``) and ``build`` (``build_services``).
"""

from lowart.services.build import audit_trail, build_services, circuit_config, retry_config
from lowart.services.composition import Services
from lowart.services.master_key import check_master_key, resolve_master_key

__all__ = [
    "Services",
    "audit_trail",
    "build_services",
    "check_master_key",
    "circuit_config",
    "resolve_master_key",
    "retry_config",
]
