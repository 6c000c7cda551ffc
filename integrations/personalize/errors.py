"""One error type for everything Personalize answers badly, classified by `kind`."""

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

THROTTLED_CODES = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "LimitExceededException",
    "RequestLimitExceeded",
}
CREDENTIAL_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "AccessDeniedException",
}
# Personalize's own 5xx answers, once botocore's retries are used up: a bad moment of the
# service, which waiting may fix.
UNAVAILABLE_CODES = {
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServerError",
    "InternalServerException",
}
CODE_KINDS = {
    "ResourceNotFoundException": "not_found",
    "InvalidInputException": "invalid",
    "ValidationException": "invalid",
    "InvalidNextTokenException": "invalid",
    "ResourceInUseException": "in_use",
    "ResourceAlreadyExistsException": "exists",
}
RETRYABLE_KINDS = {"throttled", "unavailable", "in_use"}


class PersonalizeError(Exception):
    """A failed Personalize call. `kind` is one of throttled, unavailable (timeout or
    connection), in_use (resource not ready yet), credentials, not_found, invalid, exists,
    failed; `retryable` says whether the same call may succeed later."""

    def __init__(self, kind: str, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code

    def __reduce__(self):
        # Picklable as itself, so Celery hands the error, not a wrapper's repr of it, to
        # failure handlers and the result backend.
        return (type(self), (self.kind, str(self)), {"code": self.code})

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def personalize_error(operation: str, resource: str, error: Exception) -> PersonalizeError:
    """Classify a botocore exception; the message names the operation and the resource."""
    where = f"Personalize {operation} {resource}".rstrip()
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return PersonalizeError("credentials", f"{where}: no AWS credentials ({error})")
    if isinstance(error, HTTPClientError | ConnectionError):
        return PersonalizeError("unavailable", f"{where}: no answer in time ({error})")
    if isinstance(error, ClientError):
        code = error_code(error)
        text = error.response.get("Error", {}).get("Message", "") or str(error)
        if code in THROTTLED_CODES:
            return PersonalizeError("throttled", f"{where}: throttled ({text})", code=code)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in UNAVAILABLE_CODES or status >= 500:
            return PersonalizeError(
                "unavailable", f"{where}: {code or f'HTTP {status}'} ({text})", code=code
            )
        if code in CREDENTIAL_CODES:
            return PersonalizeError("credentials", f"{where}: {code} ({text})", code=code)
        kind = CODE_KINDS.get(code, "failed")
        return PersonalizeError(kind, f"{where}: {code or 'error'} ({text})", code=code)
    if isinstance(error, BotoCoreError):
        return PersonalizeError("failed", f"{where}: {error}")
    return PersonalizeError("failed", f"{where}: {error!r}")
