"""Patch review: reading patches and mails, applying them to a scratch tree, and
what a change introduced.

May import: run and everything below.
"""
