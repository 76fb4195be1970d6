"""Files in and out, masking and parsing: raw bytes -> masked source -> tree-sitter tree;
and the one atomic writer every output goes through (files.py).

May import: kernel, model.
"""
