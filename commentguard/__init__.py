"""The command line: the one place that wires model/, training/, store/ and service/ together."""
