"""Settings: parsed once from the environment into one frozen object of groups, then passed down.

``settings.<group>.<field>``: each field is declared once, with its variable, default and
documentation (:mod:`lowart.settings.declare`); the README's settings tables are generated from
those declarations (:func:`markdown_table`).
"""

from lowart.settings.root import Settings
from lowart.settings.serving import MIN_ADMIN_KEY, MIN_MASTER_KEY
from lowart.settings.table import (
    Row,
    markdown_table,
    setting_names,
    settings_table,
    update_readme,
    with_table,
)

__all__ = [
    "MIN_ADMIN_KEY",
    "MIN_MASTER_KEY",
    "Row",
    "Settings",
    "markdown_table",
    "setting_names",
    "settings_table",
    "update_readme",
    "with_table",
]
