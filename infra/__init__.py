"""Infrastructure: how kefu reaches Temporal and the outside world, with no business rules.

Lives here: the Temporal connection and data converter (temporal_env), the AES-256-GCM payload codec and its
HTTP codec server, structured logging with PII masking (logconfig), and the Prometheus metrics (metrics). May
import models/ and domain/pii only; workflows/ may import `metrics` (it uses only temporalio's workflow meter).
"""
