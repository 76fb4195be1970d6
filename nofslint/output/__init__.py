"""Reporters: one module per output format behind one interface.

May import: review, run and everything below.
"""
