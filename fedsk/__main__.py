"""``python -m fedsk``: the ``fedsk`` command."""

from .cli import main_exit

main_exit()
