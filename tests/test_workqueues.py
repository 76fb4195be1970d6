"""Workqueue facts and the queue/work registry: keys, flags, what links to what."""

from __future__ import annotations

from pathlib import Path

from nofslint.analysis.workqueues import Registry
from nofslint.extract.facts import extract
from nofslint.kernel.tree import tree_for
from nofslint.link.index import TreeIndex
from nofslint.model.facts import FileFacts

SOURCE = b"""
#define FOO_FLAGS(f)	(WQ_SYSFS | (f))
#define FOO_RECLAIM	(WQ_MEM_RECLAIM | WQ_UNBOUND)
static struct workqueue_struct *foo_wq;
static DECLARE_DELAYED_WORK(foo_stats_work, foo_stats_fn);
int foo_init(struct foo_dev *dev, int hi)
{
	struct workqueue_struct *wq;

	foo_wq = alloc_workqueue("foo", FOO_RECLAIM, 0);
	dev->a_wq = alloc_workqueue("foo-a", FOO_FLAGS(WQ_HIGHPRI), 0);
	dev->b_wq = alloc_workqueue("foo-b", hi ? WQ_MEM_RECLAIM : 0, 0);
	dev->c_wq = create_workqueue("foo-c");
	wq = alloc_ordered_workqueue("foo-d/%s", 0, dev->name);
	dev->e_wq = alloc_workqueue("%s", 0, 0, dev->name);
	dev->f_wq = alloc_workqueue("foo-bh", WQ_BH | WQ_HIGHPRI, 0);
	if (!wq)
		return -ENOMEM;
	dev->d_wq = wq;
	INIT_DELAYED_WORK(&dev->dwork, foo_dwork_fn);
	queue_delayed_work(dev->a_wq, &dev->dwork, 1);
	schedule_work(&dev->ev);
	return 0;
}
static void foo_dwork_fn(struct work_struct *work)
{
	struct foo_dev *dev = container_of(to_delayed_work(work), struct foo_dev, dwork);

	flush_work(&dev->dwork.work);
	flush_workqueue(FOO_DEV(work)->d_wq);
	flush_work(work);
}
"""


def _facts(source: bytes = SOURCE, rel: str = "drivers/foo/foo.c") -> FileFacts:
    return extract(source, rel, tree_for(Path("/nonexistent/foo.c"), None))


def _registry(*files: FileFacts) -> Registry:
    index = TreeIndex()
    tree = tree_for(Path("/nonexistent/foo.c"), None)
    for facts in files:
        index.add(facts, tree, Path("/nonexistent") / facts.path)
    return Registry.build(index)


def test_facts_key_queues_and_works_by_where_they_are_stored() -> None:
    facts = _facts()
    stores = {q.name: q.store for q in facts.wq_queues}
    assert stores == {"foo": "s:foo_wq", "foo-a": "f:foo_dev.a_wq", "foo-b": "f:foo_dev.b_wq",
                      "foo-c": "f:foo_dev.c_wq", "foo-d/%s": "f:foo_dev.d_wq",
                      "%s": "f:foo_dev.e_wq", "foo-bh": "f:foo_dev.f_wq"}
    uses = [(u.api, u.work, u.queue, u.target) for u in facts.wq_uses]
    assert ("DECLARE_WORK", "s:foo_stats_work", None, "foo_stats_fn") in uses
    assert ("INIT_DELAYED_WORK", "f:foo_dev.dwork", None, "foo_dwork_fn") in uses
    assert ("queue_delayed_work", "f:foo_dev.dwork", "f:foo_dev.a_wq", None) in uses
    assert ("schedule_work", "f:foo_dev.ev", "g:system_wq", None) in uses
    # The delayed work's embedded .work is the same item; a parameter names none.
    assert ("flush_work", "f:foo_dev.dwork", None, None) in uses
    assert ("flush_workqueue", None, "f:?.d_wq", None) in uses
    assert not [u for u in uses if u[0] == "flush_work" and u[1] is None]


def test_facts_survive_the_cache_format() -> None:
    facts = _facts()
    data = facts.to_data()
    FileFacts.check_data(data)
    back = FileFacts.from_data(data)
    assert back.wq_queues == facts.wq_queues and back.wq_uses == facts.wq_uses
    assert back.wq_macros == facts.wq_macros


def test_flags_are_sets_through_macros() -> None:
    reg = _registry(_facts())

    def states(key: tuple[str, ...]) -> tuple[bool | None, bool | None]:
        (queue,) = reg.queues[key]
        return queue.reclaim, queue.legacy

    assert states(("s", "0", "foo_wq")) == (True, False)  # object-like macro
    assert states(("f", "foo_dev", "a_wq")) == (False, False)  # function-like, expanded
    assert states(("f", "foo_dev", "b_wq")) == (None, False)  # depends on a condition
    assert states(("f", "foo_dev", "c_wq")) == (True, True)  # legacy create_workqueue()
    assert states(("f", "foo_dev", "d_wq")) == (False, False)  # stored through a local
    assert reg.runs_reclaim(("s", "0", "foo_wq")) is not None
    assert reg.runs_reclaim(("f", "foo_dev", "c_wq")) is None  # legacy never warns
    assert reg.lacks_reclaim(("f", "foo_dev", "b_wq")) is None  # not guessed
    # Names as the kernel prints them; a format that is only "%s" says nothing.
    names = {k[-1]: reg.queues[k][0].name for k in reg.queues if k[0] != "g"}
    assert names["foo_wq"] == "foo" and names["d_wq"] == "foo-d/%s"
    assert names["e_wq"] == "foo_dev.e_wq"
    # A softirq queue cannot be given WQ_MEM_RECLAIM: the rule offers no such fix.
    assert reg.queues[("f", "foo_dev", "f_wq")][0].bh is True
    assert reg.queues[("f", "foo_dev", "a_wq")][0].bh is False
    # System queues are known even when the tree does not define them.
    assert reg.lacks_reclaim(("g", "system_wq")).name == "events"


def test_flushes_target_the_queues_their_work_is_queued_on() -> None:
    reg = _registry(_facts())
    targets = {use.api: t for _, use, t, _ in reg.flushes}
    assert targets["flush_work"] == [("f", "foo_dev", "a_wq")]
    # f:?.d_wq: the only struct with a d_wq field is foo_dev.
    assert targets["flush_workqueue"] == [("f", "foo_dev", "d_wq")]


def test_an_untyped_field_shared_by_two_structs_names_nothing() -> None:
    other = _facts(b"""
int bar_init(struct bar_dev *bar)
{
	bar->d_wq = alloc_workqueue("bar", WQ_MEM_RECLAIM, 0);
	return 0;
}
""", "drivers/bar/bar.c")
    reg = _registry(_facts(), other)
    assert reg.key(0, "f:?.d_wq") is None
    assert "flush_workqueue" not in {use.api for _, use, _, _ in reg.flushes}


def test_statics_are_private_to_their_file() -> None:
    reg = _registry(_facts(), _facts(rel="drivers/foo2/foo.c"))
    assert reg.key(0, "s:foo_wq") != reg.key(1, "s:foo_wq")
    assert reg.key(0, "g:system_wq") == reg.key(1, "g:system_wq")


def test_a_creator_called_with_too_few_arguments_is_not_the_api() -> None:
    """A macro or a mutation spelling a creator with fewer arguments than the API has:
    no queue, no crash (hypothesis found ``create_singlethread_workqueue()``)."""
    facts = _facts(b"void f(void)\n{\n\tq = create_singlethread_workqueue();\n"
                   b"\tr = alloc_workqueue();\n}\n")
    assert facts.wq_queues == []
