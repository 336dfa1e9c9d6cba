"""Logging for the worker, the CLI and tests: structlog on top of stdlib logging, personal data masked.

Customer PII never goes into logs in clear (DESIGN identity, 002 §6.3): a processor masks the values of known
personal-data keys and scrubs anything that looks like a phone number or an email from every string, for
structlog events and for stdlib records (temporalio, SQLAlchemy) alike.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from domain.pii import mask_fields


def mask_pii(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask PII keys (customer_name, phone, ...) and phone/email look-alikes in any value."""
    return mask_fields(event_dict)


def configure_logging(level: str | int = "INFO", json: bool = False) -> None:
    """Console lines by default, one JSON object per line with json=True; ISO UTC timestamps on both.

    Values bound with structlog.contextvars (request_id in activities) appear on every line of the call.
    """
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_pii,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # a traceback is text like any other: rendered first, then masked (the SDK's decoding errors quote the
            # payload, e.g. pydantic's input_value with a phone number; issue 15)
            structlog.processors.format_exc_info,
            mask_pii,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)


def get_logger(name: str, **initial: Any) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **initial)
    return logger
