"""`aimass`, the operator's and scripts' entry point: the parser (`main`) and one module per command group."""
