"""Kartu's starter, one part per audience:

- ``starter.client``: ``KartuClient``, the Python API for backends and ops scripts (payments,
  registrations and cards, reads and searches, refunds, resolve, the provider's view,
  reconciliation, unmatched callbacks), one module per concern;
- ``starter.cli``: ``kartu``, the command line (argument types, parser, production commands;
  the local-development commands ``up``, ``demo`` and ``sandbox`` apart, in ``cli.dev``);
- the local stack: ``stack`` (``kartu up``), ``devserver``, ``binaries``, ``demo``;
- ``connection``: the Temporal connection every entry point builds (worker, gateway, CLI,
  ``KartuClient``; ``settings`` re-exports it), ``output``: printing shared by ``kartu``
  and ``kartu up``.

The payload codec is the top-level ``codec`` package (the worker and the starter both use it).
"""
