"""Runbooks (automation executions): a runbook's steps (``fleetops.common.runbooks``) run one after another on the
controller, each a run command in cumulative batches with an optional health probe, a wait, an approval or a
branch, going where ``next``, ``on_failure`` and branch cases say until ``end`` or ``abort``. ``plan`` holds the pure
decisions (batch sizes, template rendering, conditions, the next step), with no I/O and no clock.
"""
