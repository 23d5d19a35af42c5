"""``GET /api/me``: who the key belongs to (Debitura's ``MeApi``); ``GET/PUT
/api/me/notification-preferences``: which e-mails the key's user gets (issue 13, item 4)."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import Field, StrictBool

from api.deps import CurrentPrincipal, SessionDep
from api.errors import invalid, not_found
from api.idempotency import idempotent
from api.responses import json_response
from domain.base import ApiModel
from domain.enums import OrgKind
from domain.mail import CATEGORIES, MailCategory, categories_of
from store import directory
from store import preferences as preference_store

router = APIRouter(tags=["me"])


class MeUser(ApiModel):
    id: UUID
    name: str | None
    email: str


class MeView(ApiModel):
    """Debitura's ``CreditorMeApiDTO`` names for what caseloop keeps of an organisation (``id``,
    ``companyName``, ``country``), and caseloop's: the organisation's ``role`` and
    ``timezone`` and the ``user`` whose key made the call. Partners and ops get it too."""

    id: UUID
    company_name: str
    country: str
    role: OrgKind
    timezone: str
    user: MeUser


@router.get("/me", response_model=MeView, responses={401: {}})
async def me(principal: CurrentPrincipal, session: SessionDep) -> MeView:
    """The caller's organisation and user."""
    org = await directory.organisation(session=session, org_id=principal.org_id)
    if org is None:  # the key's lookup found it a moment ago; deleted since
        raise not_found("Organisation")
    return MeView(
        id=org.id,
        company_name=org.name,
        country=org.country,
        role=principal.role,
        timezone=org.timezone,
        user=MeUser(id=principal.user_id, name=principal.user_name, email=principal.user_email),
    )


class NotificationPreference(ApiModel):
    """One e-mail category and whether the user gets it (every category is on until turned
    off). ``label`` names it; ``description`` says when such an e-mail is sent."""

    category: MailCategory
    label: str
    description: str
    enabled: bool


class NotificationPreferences(ApiModel):
    """Every category the caller's side gets (``domain.mail.CATEGORIES``), in a fixed order,
    for the caller's own user."""

    preferences: list[NotificationPreference]


class PreferenceChoice(ApiModel):
    category: MailCategory
    enabled: StrictBool  # true or false: 0, 1 and "yes" are refused, as the schema says


class UpdateNotificationPreferences(ApiModel):
    """The categories to turn on or off; those left out keep their setting. A category named
    more than once takes its last entry."""

    preferences: list[PreferenceChoice] = Field(min_length=1, max_length=len(MailCategory))


def preferences_view(role: OrgKind, chosen: dict[MailCategory, bool]) -> NotificationPreferences:
    """The categories ``role``'s side gets, each on or off as ``chosen`` says."""
    return NotificationPreferences(
        preferences=[
            NotificationPreference(
                category=category,
                label=CATEGORIES[category].label,
                description=f"Sent when {CATEGORIES[category].reason}.",
                enabled=chosen[category],
            )
            for category in categories_of(role)
        ]
    )


@router.get(
    "/me/notification-preferences", response_model=NotificationPreferences, responses={401: {}}
)
async def get_notification_preferences(
    principal: CurrentPrincipal, session: SessionDep
) -> NotificationPreferences:
    """The e-mail categories the caller's side gets (creditors, partners: ops users get none),
    each on or turned off by the caller's user. Only ever the caller's own: no one reads or
    changes another user's."""
    chosen = await preference_store.preferences_of(session=session, user_id=principal.user_id)
    return preferences_view(principal.role, chosen)


@router.put(
    "/me/notification-preferences",
    response_model=NotificationPreferences,
    responses={401: {}, 422: {}},
)
async def update_notification_preferences(
    body: UpdateNotificationPreferences, request: Request, principal: CurrentPrincipal
) -> Response:
    """Turn e-mail categories on or off for the caller's user (categories the body leaves out
    keep their setting); answers with every category of the caller's side. An unknown
    category, or one the caller's side never gets, is a 422 and changes nothing. The e-mails already on their way are not held back: each copy checks
    its recipient's choice when it is sent."""
    theirs = categories_of(principal.role)
    for n, choice in enumerate(body.preferences):
        if choice.category not in theirs:
            raise invalid(
                f"preferences[{n}].category",
                f"{principal.role.value} users get no e-mails of this category",
            )

    async def execute() -> Response:
        async with request.app.state.sessions() as session, session.begin():
            await preference_store.set_preferences(
                session=session,
                user_id=principal.user_id,
                choices={choice.category: choice.enabled for choice in body.preferences},
                now=dt.datetime.now(dt.UTC),
            )
            chosen = await preference_store.preferences_of(
                session=session, user_id=principal.user_id
            )
        return json_response(preferences_view(principal.role, chosen))

    # The user in the fingerprint: a colleague reusing the key gets 422, never this answer.
    fingerprint = {"userId": str(principal.user_id), **body.model_dump(mode="json")}
    return await idempotent(request, principal, fingerprint, execute)
