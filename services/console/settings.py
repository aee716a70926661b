"""Settings of the console (prefix ``CSM_CONSOLE_``; the identity provider's issuer and role claim are
shared with the services as ``CSM_OIDC_ISSUER`` and ``CSM_OIDC_ROLE_CLAIM``)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import CommonSettings

# Known to everyone who reads this file: fine on a laptop, refused in production.
DEVELOPMENT_SESSION_SECRET = "csm-console-development-session-secret"


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CSM_CONSOLE_", extra="ignore", hide_input_in_errors=True, populate_by_name=True
    )

    common: CommonSettings = Field(default_factory=CommonSettings)
    host: str = "127.0.0.1"
    port: int = 8000
    # Where the four services answer: as `make up` runs them by default.
    customer_url: str = "http://127.0.0.1:8001"
    segmentation_url: str = "http://127.0.0.1:8002"
    complaints_url: str = "http://127.0.0.1:8003"
    notify_url: str = "http://127.0.0.1:8004"
    # Signs the session cookie; the cookie carries the person's token, so this is a real secret.
    session_secret: SecretStr = SecretStr(DEVELOPMENT_SESSION_SECRET)
    session_hours: float = Field(default=12.0, gt=0, le=24)
    # Send the session cookie over HTTPS only. Browsers keep a Secure cookie from http://localhost and
    # http://127.0.0.1 too, so the embedded default works; turn off only behind a plain-HTTP name.
    cookie_secure: bool = True
    # Where a phone number typed without a country code is from (ISO 3166 region), for the customer search.
    phone_region: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    # The company's OpenID Connect provider; without an issuer, no single sign-on is offered.
    oidc_issuer: str | None = Field(default=None, validation_alias=AliasChoices("CSM_OIDC_ISSUER"))
    oidc_role_claim: str = Field(default="csm_role", validation_alias=AliasChoices("CSM_OIDC_ROLE_CLAIM"))
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scope: str = "openid profile email"
    # The provider's token the console sends to the services, which verify it as a JWT: the access token,
    # or the ID token (its audience is the console's client id) for a provider whose access tokens are
    # opaque strings rather than JWTs.
    oidc_token_for_services: Literal["access_token", "id_token"] = "access_token"
    # This console's own address as the provider redirects back to it; from the request if not set.
    public_url: str | None = None

    @property
    def development_sign_in(self) -> bool:
        """Pick a role and a name, no password: for a laptop and tests, never in production."""
        return self.common.env != "production"

    @property
    def single_sign_on(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @field_validator("oidc_issuer", "oidc_client_id", "oidc_client_secret", "public_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # A deployment template's blank (CSM_CONSOLE_OIDC_CLIENT_ID= in docker-compose.yml) is not given.
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> ConsoleSettings:
        if self.common.env == "production":
            secret = self.session_secret.get_secret_value()
            if secret == DEVELOPMENT_SESSION_SECRET or len(secret) < 32:
                raise ValueError(
                    "CSM_CONSOLE_SESSION_SECRET must be set to at least 32 random characters in production"
                )
            if not self.single_sign_on:
                raise ValueError(
                    "the console needs CSM_OIDC_ISSUER and CSM_CONSOLE_OIDC_CLIENT_ID in production: "
                    "the development sign-in is refused there"
                )
        return self
