"""Built-in nofslint rules, one per module (installed as ``nofslint.rules``)."""
