"""Exceptions raised by the client, split by what the caller can do about them.

Connection failures and retriable protocol errors are retried by the client's routing layer
(after refreshing metadata); everything else reaches the caller with the Kafka error code
attached, so tools can print it and tests can assert on it.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode


class KafkaError(Exception):
    """Base class of everything this client raises on purpose."""


class KafkaConnectionError(KafkaError):
    """The TCP connection could not be opened, broke, or the broker went silent."""


class KafkaTimeoutError(KafkaConnectionError):
    """No response within the request timeout; the connection is closed because its
    ordering is no longer trustworthy (as the Java client does)."""


class KafkaAuthenticationError(KafkaError):
    """SASL failed (wrong password, unknown user, mechanism not enabled, a server that
    could not prove it knows the credential). Never retried: retrying a wrong password
    changes nothing and may lock the account."""


class KafkaTlsError(KafkaError):
    """The TLS handshake failed for a reason retrying cannot fix (untrusted or expired
    certificate, host name mismatch, a client certificate the broker wants)."""


class KafkaUnsupportedVersion(KafkaError):
    """Neither side has a common version of an API we need."""

    def __init__(self, api_key: int, detail: str) -> None:
        super().__init__(f"api_key={api_key}: {detail}")
        self.api_key = api_key


class KafkaProtocolError(KafkaError):
    """The broker answered with a non-zero error code."""

    def __init__(self, error_code: int, message: str | None = None, *, context: str = "") -> None:
        try:
            self.code: ErrorCode | None = ErrorCode(int(error_code))
            name = self.code.name
        except ValueError:
            self.code = None
            name = "UNKNOWN"
        self.error_code = int(error_code)
        self.message = message
        text = f"{name.upper()} ({self.error_code})"
        if context:
            text = f"{context}: {text}"
        if message:
            text += f": {message}"
        super().__init__(text)

    @property
    def retriable(self) -> bool:
        return bool(self.code is not None and self.code.retriable)


#: Error codes after which a metadata refresh (new leader / coordinator / controller)
#: is likely to help, so the routing layer retries them until its deadline.
REROUTE_CODES: frozenset[int] = frozenset(
    int(c)
    for c in (
        ErrorCode.not_leader_or_follower,
        ErrorCode.unknown_topic_or_partition,
        ErrorCode.leader_not_available,
        ErrorCode.not_controller,
        ErrorCode.not_coordinator,
        ErrorCode.coordinator_not_available,
        ErrorCode.coordinator_load_in_progress,
        ErrorCode.fenced_leader_epoch,
        ErrorCode.unknown_leader_epoch,
        ErrorCode.request_timed_out,
        ErrorCode.network_exception,
        ErrorCode.not_enough_replicas,
        ErrorCode.kafka_storage_error,
        ErrorCode.replica_not_available,
        ErrorCode.broker_not_available,
        ErrorCode.unknown_topic_id,
    )
)


def is_retriable(exc: BaseException) -> bool:
    """Whether the routing layer should refresh metadata and try again."""
    if isinstance(exc, KafkaConnectionError):
        return True
    return isinstance(exc, KafkaProtocolError) and exc.error_code in REROUTE_CODES


def check(error_code: int | ErrorCode, message: str | None = None, *, context: str = "") -> None:
    """Raise KafkaProtocolError unless error_code is 0."""
    if int(error_code) != 0:
        raise KafkaProtocolError(int(error_code), message, context=context)
