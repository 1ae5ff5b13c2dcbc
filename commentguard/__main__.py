"""``python -m commentguard`` runs the command line."""
from commentguard.cli import main

main()
