"""Per-file facts extraction and the control-flow builder (syntax tree -> model.facts).

May import: frontend, kernel, model.
"""
