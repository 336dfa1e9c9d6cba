"""Load a policy pack for a new request. Its result is pinned in the workflow's history: a request keeps the
version it was accepted under, and editing a pack file changes only new requests."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.policy import PolicyPack
from policies.loader import PolicyError, get_pack


@activity.defn(name="load_policy")
def load_policy(policy_id: str) -> PolicyPack:
    try:
        return get_pack(policy_id)
    except PolicyError as exc:
        raise ApplicationError(str(exc), type="PolicyError", non_retryable=True) from exc
