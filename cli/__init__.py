"""The `kefu` command line: argument parsing, output and one-line errors for people and scripts.

Lives here: the command tree (main.py), agent directory and incident commands, `kefu doctor`, `kefu sla`'s
explanation and the shared output helpers. May import everything below it (domain, models, policies, archive,
reports, infra, and workflows for their message types); nothing imports cli/ except the root entry points.
"""
