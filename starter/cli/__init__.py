"""``kartu``: the command line of Kartu for ops and scripts, over ``KartuClient``.

    kartu up                                   # the whole local stack, Ctrl-C stops it
    kartu register reg_1 --name "Budi" --email budi@example.com --phone 6281234567890 \\
        --redirect-url https://shop.example/cards
    kartu sandbox card <webview-url> --card 4111111111111111 --otp 123456
    kartu registration reg_1 --wait            # card token and customer id
    kartu pay order_1 --customer CUST0000000001 --amount 150000 --card-token <token> \\
        --redirect-url https://shop.example/return
    kartu status order_1 --json
    source <(kartu completion bash)            # or zsh

Every command takes ``--json`` (the answer as JSON on stdout; an error as one
``{"error": {...}}`` object there too) and the Temporal connection of the worker
(``TEMPORAL_PROFILE``, ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``,
``TEMPORAL_TLS_*``, ``KARTU_TASK_QUEUE``), with ``--address`` / ``--namespace`` /
``--task-queue`` winning. Bad input exits 2 with one line on stderr saying what to fix, before
anything is started; a refusal or failure of the operation exits 1, also in one line. On a
terminal, answers are ``rich`` tables; piped, plain aligned text.

- ``args``: the argument types (the rules are ``ayoconnect.models`` / ``workflows`` ones);
- ``parser``: every command and option; ``completion``: shell scripts generated from it;
- ``commands``: the production commands, one ``KartuClient`` call each; ``reconcile``: ``kartu
  reconcile``;
- ``dev``: ``kartu up``, ``kartu demo``, ``kartu sandbox ...`` (stack, demo and sandbox code
  imported only when they run);
- ``views`` (what an answer looks like), ``console`` (rich or plain, progress), ``errors``
  (exit codes, one-line or JSON errors), ``main`` (``run``, ``main``).
"""

from __future__ import annotations

from .main import main, run
from .parser import build_parser

__all__ = ["build_parser", "main", "run"]
