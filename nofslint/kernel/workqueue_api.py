"""The workqueue API, as tables: which argument is the queue, the work, the flags.

Semantics from include/linux/workqueue.h and kernel/workqueue.c:
``create_*workqueue()`` are legacy queues with WQ_MEM_RECLAIM;
``alloc_ordered_workqueue()`` adds WQ_UNBOUND | __WQ_ORDERED; the
``schedule_*()`` helpers queue on the system queue; ``flush_scheduled_work()``
flushes it. ``check_flush_dependency()`` runs for the flushes listed here and
not for the cancel path (``cancel_*_sync()``, ``disable_*_sync()``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RECLAIM = "WQ_MEM_RECLAIM"
LEGACY = "__WQ_LEGACY"


@dataclass(frozen=True)
class Creator:
    fmt_arg: int | None  # the name (a format string for alloc_*workqueue())
    flags_arg: int | None  # None: the API takes no flags
    implicit: str  # flags the API adds itself


CREATORS: dict[str, Creator] = {
    "alloc_workqueue": Creator(0, 1, ""),
    "alloc_workqueue_lockdep_map": Creator(0, 1, ""),
    "alloc_ordered_workqueue": Creator(0, 1, "WQ_UNBOUND | __WQ_ORDERED"),
    "alloc_ordered_workqueue_lockdep_map": Creator(0, 1, "WQ_UNBOUND | __WQ_ORDERED"),
    "create_workqueue": Creator(0, None, "__WQ_LEGACY | WQ_MEM_RECLAIM"),
    "create_freezable_workqueue": Creator(
        0, None, "__WQ_LEGACY | WQ_FREEZABLE | WQ_UNBOUND | WQ_MEM_RECLAIM"),
    "create_singlethread_workqueue": Creator(
        0, None, "__WQ_LEGACY | WQ_MEM_RECLAIM | WQ_UNBOUND | __WQ_ORDERED"),
}


@dataclass(frozen=True)
class WorkCall:
    """An API call that binds, queues or flushes a work item or a queue.

    ``queue_arg``/``work_arg`` are argument indexes; ``SYSTEM`` marks the
    system queue the helper uses implicitly.
    """

    role: str  # 'bind' | 'queue' | 'flush' | 'thread' (a kthread's function)
    work_arg: int | None = None
    queue_arg: int | str | None = None
    fn_arg: int | None = None  # bind: the work function


SYSTEM = "system"

WORK_CALLS: dict[str, WorkCall] = {
    **{name: WorkCall("bind", work_arg=0, fn_arg=1) for name in (
        "INIT_WORK", "INIT_WORK_ONSTACK", "INIT_WORK_ONSTACK_KEY", "INIT_DELAYED_WORK",
        "INIT_DELAYED_WORK_ONSTACK", "INIT_DEFERRABLE_WORK", "INIT_DEFERRABLE_WORK_ONSTACK",
        "INIT_RCU_WORK", "INIT_RCU_WORK_ONSTACK", "PREPARE_WORK", "PREPARE_DELAYED_WORK")},
    # kthread_worker items: bound like works, never queued on a workqueue.
    "kthread_init_work": WorkCall("bind", work_arg=0, fn_arg=1),
    "kthread_init_delayed_work": WorkCall("bind", work_arg=0, fn_arg=1),
    **{name: WorkCall("thread", fn_arg=0) for name in (
        "kthread_create", "kthread_run", "kthread_create_on_node", "kthread_create_on_cpu",
        "kthread_run_on_cpu")},
    "queue_work": WorkCall("queue", work_arg=1, queue_arg=0),
    "queue_work_on": WorkCall("queue", work_arg=2, queue_arg=1),
    "queue_work_node": WorkCall("queue", work_arg=2, queue_arg=1),
    "queue_delayed_work": WorkCall("queue", work_arg=1, queue_arg=0),
    "queue_delayed_work_on": WorkCall("queue", work_arg=2, queue_arg=1),
    "mod_delayed_work": WorkCall("queue", work_arg=1, queue_arg=0),
    "mod_delayed_work_on": WorkCall("queue", work_arg=2, queue_arg=1),
    "queue_rcu_work": WorkCall("queue", work_arg=1, queue_arg=0),
    "enable_and_queue_work": WorkCall("queue", work_arg=1, queue_arg=0),
    "schedule_work": WorkCall("queue", work_arg=0, queue_arg=SYSTEM),
    "schedule_work_on": WorkCall("queue", work_arg=1, queue_arg=SYSTEM),
    "schedule_delayed_work": WorkCall("queue", work_arg=0, queue_arg=SYSTEM),
    "schedule_delayed_work_on": WorkCall("queue", work_arg=1, queue_arg=SYSTEM),
    "flush_work": WorkCall("flush", work_arg=0),
    "flush_delayed_work": WorkCall("flush", work_arg=0),
    "flush_rcu_work": WorkCall("flush", work_arg=0),
    "flush_workqueue": WorkCall("flush", queue_arg=0),
    "__flush_workqueue": WorkCall("flush", queue_arg=0),
    "drain_workqueue": WorkCall("flush", queue_arg=0),
    "destroy_workqueue": WorkCall("flush", queue_arg=0),
    "flush_scheduled_work": WorkCall("flush", queue_arg=SYSTEM),
}

# ``DECLARE_WORK(name, fn)`` and friends define a work item at file scope.
DECLARE_WORK = re.compile(
    rb"^[ \t]*(static[ \t]+)?DECLARE_(?:DELAYED_|DEFERRABLE_|RCU_)?WORK[ \t]*\([ \t]*(\w+)"
    rb"[ \t]*,[ \t]*&?(\w+)[ \t]*\)", re.M)

# The system queues (kernel/workqueue.c, workqueue_init_early()): none has
# WQ_MEM_RECLAIM. Used when the linted tree does not contain their creation.
SYSTEM_QUEUES: dict[str, tuple[str, str]] = {
    "system_wq": ("events", "0"),
    "system_percpu_wq": ("events", "0"),
    "system_highpri_wq": ("events_highpri", "WQ_HIGHPRI"),
    "system_long_wq": ("events_long", "0"),
    "system_unbound_wq": ("events_unbound", "WQ_UNBOUND"),
    "system_dfl_wq": ("events_unbound", "WQ_UNBOUND"),
    "system_freezable_wq": ("events_freezable", "WQ_FREEZABLE"),
    "system_power_efficient_wq": ("events_power_efficient", "WQ_POWER_EFFICIENT"),
    "system_freezable_power_efficient_wq": (
        "events_freezable_pwr_efficient", "WQ_FREEZABLE | WQ_POWER_EFFICIENT"),
    "system_bh_wq": ("events_bh", "WQ_BH"),
    "system_bh_highpri_wq": ("events_bh_highpri", "WQ_BH | WQ_HIGHPRI"),
}

# Work and queue types: a key ending in one of these names no particular item.
GENERIC_TYPES = frozenset({"work_struct", "delayed_work", "rcu_work", "workqueue_struct"})

WQ_ATOM = re.compile(r"_*WQ_[A-Z0-9_]+")
