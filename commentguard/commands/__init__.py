"""One module per command group of the ``commentguard`` command line."""
