"""API keys: `Authorization: Bearer <key>`, or `?key=` for public keys (a widget's GET then
needs no CORS preflight, and `sendBeacon` cannot set headers), and what each kind may do."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from recommendations.models import ApiKey
from recommendations.services.api_keys import KEY_PREFIXES, api_key_authenticate
from recsite.errors import CACHE_ERRORS


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if header:
            scheme, _, raw_key = header.partition(" ")
            if scheme != self.keyword or not raw_key.strip():
                raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <API key>'.")
            raw_key = raw_key.strip()
        else:
            raw_key = request.query_params.get("key", "").strip()
            if not raw_key:
                return None
            if raw_key.startswith(KEY_PREFIXES[ApiKey.Kind.SECRET]):
                # A URL ends up in logs and browser histories; a secret key must not.
                raise exceptions.AuthenticationFailed(
                    "Secret keys go in the Authorization header, never in the URL. "
                    "Revoke this one: it may be in logs now."
                )
        api_key = api_key_authenticate(raw_key=raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A secret key (rs_sk_…, servers) or a public key (rs_pk_…, "
            "widgets; may also go in the `key` query parameter).",
        }


def _api_key(request) -> ApiKey:
    if not isinstance(request.auth, ApiKey):
        raise exceptions.NotAuthenticated(
            "Send 'Authorization: Bearer <API key>' (or ?key=<public key>)."
        )
    return request.auth


class HasSecretKey(permissions.BasePermission):
    message = "This endpoint needs a secret API key."

    def has_permission(self, request, view) -> bool:
        return _api_key(request).kind == ApiKey.Kind.SECRET


class HasSiteKey(permissions.BasePermission):
    """A secret key, or a public key used from one of its site's origins. A browser always
    sends `Origin` on cross-origin requests; a request without one (a server, curl) may use
    a public key too, which can only read lists and write events anyway."""

    def has_permission(self, request, view) -> bool:
        api_key = _api_key(request)
        if api_key.kind == ApiKey.Kind.SECRET:
            return True
        origin = request.headers.get("Origin")
        if origin and origin not in api_key.allowed_origins:
            raise exceptions.PermissionDenied(
                f"Origin {origin} is not allowed for this public key; add it to the key's "
                "allowed origins in admin."
            )
        return True


class PublicKeyThrottle(throttling.SimpleRateThrottle):
    """Requests per public key and client address (`API_PUBLIC_RATE`); secret keys, used
    server to server, are not throttled here."""

    scope = "public"

    def get_rate(self) -> str:
        return settings.API_PUBLIC_RATE  # read per request, so a settings change applies

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except CACHE_ERRORS:
            # The request history lives in Redis: while it is down public keys go
            # unthrottled, rather than every widget request failing.
            return True

    def get_cache_key(self, request, view) -> str | None:
        api_key = request.auth
        if not isinstance(api_key, ApiKey) or api_key.kind != ApiKey.Kind.PUBLIC:
            return None
        return f"throttle:public:{api_key.pk}:{self.get_ident(request)}"
