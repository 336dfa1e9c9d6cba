"""The message and payload types of kefu (pydantic): what a backend submits (intake), what agents and supervisors
send a running request (actions), what its status query returns (status), the incident messages (incident), the
activities' payloads (records, assignment), the policy pack schema (policy), search attribute keys (search) and
input-error messages (errors). Pure data with validation: they import nothing of ours but other models, so
workflows, activities, the archive and the CLI can all share them."""
