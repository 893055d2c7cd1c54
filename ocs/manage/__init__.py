"""The commands of ``ocs-manage``, one module per family.

Each module exports ``register(subparsers)``; every command is a function
``(conf, args) -> int`` stored as ``args.func``.
"""
