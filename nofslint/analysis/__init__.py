"""Whole-tree analyses rules build on: scopes and path walks, summaries, the
workqueue registry, reclaim entries.

May import: link, extract, frontend, kernel, model.
"""
