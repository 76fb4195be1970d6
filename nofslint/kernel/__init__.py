"""What nofslint knows of the kernel: gfp tables, allocators, workqueue API,
transaction and reclaim-entry tables, tree discovery and version.

May import: model.
"""
