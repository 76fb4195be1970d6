"""A run: settings, orchestration, workers, filters, stats.

May import: incremental, plugins, api and everything below.
"""
