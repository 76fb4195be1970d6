"""The whole-tree index of every file's facts, and the reads it records for rules.

May import: extract, frontend, kernel, model (rules and analyses read facts only
through the index's accessors, which note what they read).
"""
