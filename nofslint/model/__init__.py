"""Plain data every stage shares: findings and edits, facts records, gfp masks, flow graphs.

The leaf layer: imports nothing from the other layers and nothing of tree-sitter.
"""
