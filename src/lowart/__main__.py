"""``python -m lowart``."""

from lowart.cli import main

main()
