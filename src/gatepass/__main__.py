"""`python -m gatepass`: the same as the `gatepass` command."""

from gatepass.cli import main

main()
