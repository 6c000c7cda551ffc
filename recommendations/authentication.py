"""`Authorization: Bearer <key>` authentication for the public APIs, and the key scopes."""

from rest_framework import authentication, exceptions, permissions

from recommendations.models import ApiKey
from recommendations.services.api_keys import api_key_authenticate


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme != self.keyword or not raw_key.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <API key>'.")
        api_key = api_key_authenticate(raw_key=raw_key.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        return self.keyword


class HasSecretKey(permissions.BasePermission):
    message = "This endpoint needs a secret API key."

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated("Send 'Authorization: Bearer <API key>'.")
        return request.auth.kind == ApiKey.Kind.SECRET
