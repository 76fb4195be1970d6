"""Reading, masking and parsing: raw bytes -> masked source -> tree-sitter tree.

May import: kernel, model.
"""
