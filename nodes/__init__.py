"""Kabar workflow nodes: reusable steps chained in JSON workflow files.

The package is a skeleton until the workflows issue lands: the node base class,
registry and engine come with it.
"""

__all__: list[str] = []
