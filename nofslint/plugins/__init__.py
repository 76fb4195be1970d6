"""Rules as plugins: the registry, loading (entry points and rule directories),
reading rule files without running them, scaffolding, and rule docs.

May import: api and everything below it.
"""

from nofslint.plugins.loading import load_rules, rules_fingerprint

__all__ = ["load_rules", "rules_fingerprint"]
