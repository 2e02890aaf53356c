"""Single sign-on with the university's OpenID provider (OpenID Connect, authorization code with PKCE): GET
/signin/oidc sends the browser to the provider, GET /signin/oidc/callback checks state, nonce and the ID token
(against the provider's keys, with joserfc, authlib's JOSE library), finds the student by the configured claim
and signs the browser in. The three HTTP calls (discovery, token, userinfo) are plain httpx requests."""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.page_language import choose_language
from bot.settings import ChannelSettings
from bot.web import signin
from core.enums import Language, Service
from core.i18n import t
from core.identifiers import normalize_email
from core.masking import mask_student_number
from core.models import Student
from core.services import Core
from core.settings import secret_value
from core.students import find_student
from core.web_sessions import start_session

log = logging.getLogger(__name__)

FLOW_COOKIE = "madoguchi_oidc"  # state, nonce and the PKCE verifier between leaving and coming back
FLOW_SECONDS = 600
CALLBACK = "/signin/oidc/callback"
TIMEOUT = 10.0
LEEWAY_SECONDS = 60  # clocks of the provider and ours may differ a little


class SignOnFailed(Exception):
    """The sign-on cannot be completed; `reason` names the page's text (`links.oidc.<reason>`)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Provider:
    """What madoguchi uses of the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str


def discover(settings: ChannelSettings) -> Provider:
    """The provider's endpoints from `<issuer>/.well-known/openid-configuration`.

    Raises:
        SignOnFailed: ("provider") when the document cannot be read or names another issuer.
    """
    issuer = (settings.oidc_issuer or "").rstrip("/")
    try:
        document = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT).raise_for_status().json()
        provider = Provider(document["issuer"], document["authorization_endpoint"], document["token_endpoint"],
                            document["userinfo_endpoint"], document["jwks_uri"])
    except (httpx.HTTPError, ValueError, KeyError) as error:
        raise SignOnFailed("provider", str(error)) from error
    if provider.issuer.rstrip("/") != issuer:
        raise SignOnFailed("provider", f"the document names issuer {provider.issuer}")
    return provider


async def start(request: Request) -> Response:
    """GET /signin/oidc: to the provider's sign-in, with a fresh state, nonce and PKCE verifier kept in a
    short-lived cookie of this browser's."""
    core: Core = request.app.state.core
    settings: ChannelSettings = request.app.state.channel_settings
    lang = choose_language(request, None)
    try:
        provider = await run_in_threadpool(discover, settings)
    except SignOnFailed as failed:
        log.warning("single sign-on unavailable: %s", failed)
        return _failed(request, core, lang, failed.reason)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    query = urlencode({"response_type": "code", "client_id": settings.oidc_client_id, "scope": settings.oidc_scope,
                       "redirect_uri": core.url(CALLBACK), "state": state, "nonce": nonce,
                       "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"})
    separator = "&" if "?" in provider.authorization_endpoint else "?"
    response = RedirectResponse(f"{provider.authorization_endpoint}{separator}{query}", status_code=303)
    response.set_cookie(FLOW_COOKIE, "|".join((state, nonce, verifier, lang.value)), max_age=FLOW_SECONDS,
                        httponly=True, samesite="lax", secure=signin.secure_cookies(core), path="/signin/oidc")
    return response


async def callback(request: Request) -> Response:
    """GET /signin/oidc/callback: check what the provider sent back, sign the browser in, back to the chat."""
    core: Core = request.app.state.core
    settings: ChannelSettings = request.app.state.channel_settings
    flow = (request.cookies.get(FLOW_COOKIE) or "").split("|")
    lang = Language(flow[3]) if len(flow) == 4 and flow[3] in {lang.value for lang in Language} else \
        choose_language(request, None)
    try:
        if len(flow) != 4 or not secrets.compare_digest(flow[0], request.query_params.get("state", "")):
            raise SignOnFailed("state", "no sign-on started in this browser, or another one's answer")
        if request.query_params.get("error"):
            raise SignOnFailed("refused", request.query_params.get("error", "")[:100])
        code = request.query_params.get("code") or ""
        claims = await run_in_threadpool(_verified_claims, settings, core, code, nonce=flow[1], verifier=flow[2])
        token, student_number = await run_in_threadpool(_sign_in, core, settings.oidc_claim, claims)
    except SignOnFailed as failed:
        log.info("single sign-on refused: %s", failed)
        response = _failed(request, core, lang, failed.reason)
        response.delete_cookie(FLOW_COOKIE, path="/signin/oidc")
        return response
    log.info("browser signed in to the web chat as %s by single sign-on", mask_student_number(student_number))
    response = signin.back_to_the_chat(core, token, lang)
    response.delete_cookie(FLOW_COOKIE, path="/signin/oidc")
    return response


def _verified_claims(settings: ChannelSettings, core: Core, code: str, *, nonce: str,
                     verifier: str) -> dict[str, Any]:
    """Exchange the code (with the PKCE verifier), verify the ID token against the provider's keys (issuer,
    audience, nonce, expiry) and return the user's claims from the userinfo endpoint, for the same subject.

    Raises:
        SignOnFailed: "code" (refused or expired), "token" (an ID token that does not verify), "provider".
    """
    provider = discover(settings)
    try:
        answer = httpx.post(provider.token_endpoint, timeout=TIMEOUT,
                            auth=(settings.oidc_client_id or "", secret_value(settings.oidc_client_secret)),
                            data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                  "redirect_uri": core.url(CALLBACK)})
        tokens = answer.json()
    except (httpx.HTTPError, ValueError) as error:
        raise SignOnFailed("provider", str(error)[:200]) from error
    if answer.status_code != 200 or "id_token" not in tokens or "access_token" not in tokens:
        raise SignOnFailed("code", str(tokens.get("error", answer.status_code))[:100])
    try:
        keys = KeySet.import_key_set(httpx.get(provider.jwks_uri, timeout=TIMEOUT).raise_for_status().json())
        decoded = jwt.decode(tokens["id_token"], keys, algorithms=["RS256", "PS256", "ES256", "EdDSA"])
        JWTClaimsRegistry(now=int(core.now().timestamp()), leeway=LEEWAY_SECONDS,
                          iss={"essential": True, "value": provider.issuer},
                          aud={"essential": True, "value": settings.oidc_client_id or ""},
                          nonce={"essential": True, "value": nonce}, sub={"essential": True},
                          exp={"essential": True}).validate(decoded.claims)
        id_token = decoded.claims
    except (JoseError, KeyError, ValueError, httpx.HTTPError) as error:
        raise SignOnFailed("token", str(error)[:200]) from error
    try:
        userinfo = httpx.get(provider.userinfo_endpoint, timeout=TIMEOUT,
                             headers={"Authorization": f"Bearer {tokens['access_token']}"}).raise_for_status().json()
    except (httpx.HTTPError, ValueError) as error:
        raise SignOnFailed("provider", str(error)[:200]) from error
    if userinfo.get("sub") != id_token["sub"]:
        raise SignOnFailed("token", "userinfo is of another subject")
    return {**userinfo, **id_token}


def _sign_in(core: Core, claim: str, claims: dict[str, Any]) -> tuple[str, str]:
    """Start the session of the student the claim names: a student number, or a verified email.

    Raises:
        SignOnFailed: "no_student" when no student matches (the provider's user is not one of ours).
    """
    value = claims.get(claim)
    with core.transaction() as session:
        student: Student | None = None
        if isinstance(value, str) and claim == "email":
            if claims.get("email_verified") is not False:
                address = normalize_email(value)
                student = session.scalars(select(Student).where(Student.email == address,
                                                                Student.email_verified_at.is_not(None))).first()
        elif isinstance(value, str):
            student = find_student(session, value)
        if student is None:
            digest = hashlib.sha256(str(value).encode()).hexdigest()[:12]
            raise SignOnFailed("no_student", f"claim {claim} (sha256 {digest}) matches no student")
        return start_session(session, student, "oidc", core.now()), student.student_number


def _failed(request: Request, core: Core, lang: Language, reason: str) -> Response:
    contact = core.profile.contact(Service.STUDENT_SUPPORT)
    page = request.app.state.templates.TemplateResponse(
        request, "oidc_failed.html",
        {"lang": lang.value, "title": t("links.oidc.title", lang), "reason": t(f"links.oidc.{reason}", lang),
         "contact": contact.name(lang), "phone": contact.phone or "-", "t": partial(t, lang=lang),
         "chat": f"/?{urlencode({'lang': lang.value})}"},
        status_code=403 if reason == "no_student" else 400, headers={"Cache-Control": "no-store"})
    return page


def routes() -> list[BaseRoute]:
    """The sign-on's two pages."""
    return [Route("/signin/oidc", start, methods=["GET"]), Route(CALLBACK, callback, methods=["GET"])]
