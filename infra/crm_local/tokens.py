"""Development tokens: what Cognito issues in AWS, signed here with a local secret.

The gateway verifies them as API Gateway's Cognito authorizer verifies Cognito's: a bad
signature, an expired token or none at all gets 401, and the claims reach the function in
`requestContext.authorizer.claims`, as strings, as REST APIs pass them.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import jwt

from crm_local.private_files import write_private

# The emulator plays both user pools of template.yaml (provision.py gives them these ids): staff
# tokens come from the staff pool's issuer, customers' from the customers' pool, as in AWS,
# where the API honours staff roles only in the staff pool's tokens (crm.auth).
REGION = "us-east-1"
STAFF_POOL_ID = f"{REGION}_crmLocalStaff"
CUSTOMER_POOL_ID = f"{REGION}_crmLocalCustomers"


def pool_issuer(pool_id: str) -> str:
    return f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}"


STAFF_ISSUER = pool_issuer(STAFF_POOL_ID)
CUSTOMER_ISSUER = pool_issuer(CUSTOMER_POOL_ID)
ISSUERS = (STAFF_ISSUER, CUSTOMER_ISSUER)
LIFETIME_S = 12 * 3600
ROLES = (
    "customer", "support_agent", "support_manager", "marketer", "analyst", "privacy_officer",
    "admin",
)  # fmt: skip


class InvalidToken(Exception):
    pass


def dev_secret(state_dir: Path) -> str:
    """The signing secret of this checkout's emulator, made on first use."""
    path = state_dir / "dev-secret"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32).encode())
    return path.read_text().strip()


def issue_token(secret: str, role: str, customer_id: str | None = None, subject: str = "") -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role}; one of {', '.join(ROLES)}")
    if role == "customer" and not customer_id:
        raise ValueError("a customer token needs --customer ID")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject or (f"customer-{customer_id}" if role == "customer" else f"local-{role}"),
        "cognito:groups": [role],
        "token_use": "id",
        "iss": CUSTOMER_ISSUER if role == "customer" else STAFF_ISSUER,
        "iat": now,
        "exp": now + LIFETIME_S,
    }
    if customer_id:
        claims["custom:customer_id"] = customer_id
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, authorization: str | None) -> dict[str, str]:
    """Claims as API Gateway hands Cognito's to a REST API: every value a string."""
    if not authorization:
        raise InvalidToken("no token")
    token = authorization.removeprefix("Bearer ").strip()
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], issuer=ISSUERS,
            options={"require": ["exp", "sub", "iss"]},
        )  # fmt: skip
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    return {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in claims.items()}
