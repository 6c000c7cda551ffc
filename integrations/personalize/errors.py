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
        if code in CREDENTIAL_CODES:
            return PersonalizeError("credentials", f"{where}: {code} ({text})", code=code)
        kind = CODE_KINDS.get(code, "failed")
        return PersonalizeError(kind, f"{where}: {code or 'error'} ({text})", code=code)
    if isinstance(error, BotoCoreError):
        return PersonalizeError("failed", f"{where}: {error}")
    return PersonalizeError("failed", f"{where}: {error!r}")
