"""Changing workflow code while executions run (an authorization is held for up to 7 days).

Temporal replays a running execution's history through today's code, so a change to the
sequence of commands a lifecycle issues (activities, timers, search-attribute upserts, in what
order) must not alter what an older execution replays. The procedure:

1. Name the change here: ``<LIFECYCLE>_<WHAT>_<YYYYMM> = "<lifecycle>-<what>-<yyyymm>"``.
2. Branch on it where the sequence changes::

       if versions.changed(versions.AUTH_CAPTURE_EARLY_VOID_202701):
           ...new steps...
       else:
           ...old steps, unchanged...

3. Record a history of the new path (``KARTU_RECORD_HISTORIES=1`` on the test that covers it)
   next to the old ones: ``tests/workflows/test_workflow_replay.py`` replays both.
4. Once no execution started before the change can still be open (auth-capture: the longest
   authorization window plus its margin; others: minutes), switch to
   ``workflow.deprecate_patch(id)``, then remove the branch and the id.

The likeliest changes, already kept in one place each: the 3DS poll schedule
(``policies.challenge_poll_delays``), activity options (``policies``; options are not part of the
replayed command sequence, so they change freely; so are timer durations such as
``LATE_RESULT_GRACE`` or the refund round delays), and one function per step that may change:
the steps after the charge (``PaymentWorkflow._kept_after_deadline``, ``merchant.confirm``), the
late-result watch (``charging.watch_late_result``), one compensation attempt
(``compensation._attempt``) and one refund round (``RefundWorkflow._round``).

Live patches:

- ``AUTH_CAPTURE_VOID_FIRST_EXPIRY_202612``: at the end of the authorization window the hold
  is voided first and looked up only if the void is refused (before: a look-up, then the void,
  then another look-up when the provider's own expiry had won). Decided when the window ends,
  so an execution that expired before the deploy replays the old steps. Deprecate once no
  authorization that expired before 2026-12 can still be open (in NEEDS_ATTENTION, for ops).
- ``COMPENSATION_LOOK_FIRST_202612``: a compensating refund looks the payment up before it
  sends (already refunded: done, no request). Payments that waited in NEEDS_ATTENTION across
  the deploy replay their earlier attempts without the look-up. Deprecate once no payment
  started before 2026-12 can still wait for ops.
- ``PROVIDER_ATTENTION_202612``: a payment still PENDING_PROVIDER after its
  ``provider_attention_after`` goes NEEDS_ATTENTION (and keeps asking). Executions that passed
  that age before the deploy stay PENDING_PROVIDER. Deprecate once no payment started before
  2026-12 can still wait for the provider's answer.
- ``REVIEW_CLOSE_CHECKED_202612``: a review's close is checked against the provider (a look-up
  before it resolves). Reviews closed before the deploy replay without it. Deprecate once every
  review open before 2026-12 is resolved.
"""

from __future__ import annotations

from temporalio import workflow

AUTH_CAPTURE_VOID_FIRST_EXPIRY_202612 = "auth-capture-void-first-expiry-202612"
COMPENSATION_LOOK_FIRST_202612 = "compensation-look-first-202612"
PROVIDER_ATTENTION_202612 = "provider-attention-202612"
REVIEW_CLOSE_CHECKED_202612 = "review-close-checked-202612"


def changed(patch_id: str) -> bool:
    """True on executions that run the new code path (``workflow.patched``)."""
    return workflow.patched(patch_id)
