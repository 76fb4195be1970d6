"""Caches, saved runs and relocation: what a run keeps so the next one is fast.

May import: api and everything below it.
"""
