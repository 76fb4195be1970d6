"""Example nofslint plugin: the rules its entry point provides, in RULES."""

from .kvmalloc_nowait import KvmallocNowait
from .reclaim_rcu_wait import ReclaimRcuWait

RULES = [
    KvmallocNowait,
    ReclaimRcuWait,
]
