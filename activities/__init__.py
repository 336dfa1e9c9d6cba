"""Temporal activities: all of kefu's I/O that a workflow asks for. archive.py registers and persists requests,
incidents.py delivers and persists incidents and watches for complaint surges, assignment.py holds and releases
agents, policy.py loads a policy pack, notify.py renders the notices they queue (before the archive's transaction)
and logs them once queued; common.py is what they share. Activity names and payload types are fixed: recorded
workflow histories replay against them. They may import archive, domain, models, infra and policies; never
workflows."""
