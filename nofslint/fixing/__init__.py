"""Fixes: rewrites as byte edits, the diff of a fix, atomic apply.

May import: analysis, link, extract, frontend, kernel, model.
"""
