"""One module per CLI verb.

Each module defines ``NAME`` (the verb), ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. :mod:`quantlab.cli` discovers them, so adding a verb touches
no other file.
"""
