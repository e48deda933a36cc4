"""The peer's card: the query a frontend would send to PostGraphile (v5, Amber
preset, tables of `public` as they are) for the same card.

PostGraphile serves the tables, not the card's derived figures, so this asks
for the rows the card is computed from: the persona, its rollup, consents,
attributes, tags, sign-ups, the purchase counts per dimension, the latest
redemption, the organization's discounts, and the first page (10) of every
history list with totalCount, each order with its lines, store and ledger
entries. PostGraphile v5 orders and filters only by indexed columns by
default, so the purchase counts come whole (the client takes the top five)
and discounts unsorted. Audience membership (saved searches) has no peer
equivalent.
"""

from __future__ import annotations

import uuid
from typing import Any

_PAGE = "totalCount pageInfo { hasNextPage endCursor }"


def _top(dimension: str) -> str:
    return (
        f'{dimension}s: purchaseCountsByOrgIdAndPersonaId(condition: {{dimension: "{dimension}"}})'
        " { nodes { name orderCount lastPurchasedAt } }"
    )


PEER_CARD = f"""
query PeerCard($orgId: UUID!, $id: UUID!, $first: Int = 10) {{
  personaByOrgIdAndRowId(orgId: $orgId, rowId: $id) {{
    id rowId number firstName lastName sourceKind sourceName sourceId createdAt archivedAt loyaltyMember
    loyaltySignupAt email phone birthday walletPin browser ipAddress smsOptOutAt
    personaByOrgIdAndMergedIntoId {{ rowId number }}
    storeByOrgIdAndFavoriteStoreId {{ rowId name }}
    organizationByOrgId {{
      showPinInWallets pointsPerDollarMilli
      discountsByOrgId {{ nodes {{ rowId name pointsCost startsAt endsAt }} }}
    }}
    personaRollupByOrgIdAndPersonaId {{
      pointsBalance ordersCount itemsCount spendTotalCents spendSubtotalCents spendMemberSubtotalCents
      firstOrderAt lastOrderAt pointsOrder pointsVisit pointsReferralSale pointsRedemption
      pointsStaffAdjustment pointsAudienceBoost pointsCampaignGift pointsFlowGift pointsCollectible
      pointsLegacyImport pointsExpiration
    }}
    consentsByOrgIdAndPersonaId {{ nodes {{ channel status source updatedAt }} }}
    customAttributesByOrgIdAndPersonaId(orderBy: KEY_ASC) {{ nodes {{ key value source updatedAt }} }}
    personaTagsByOrgIdAndPersonaId(orderBy: TAG_ASC) {{ nodes {{ tag }} }}
    signupSubmissionsByOrgIdAndPersonaId(orderBy: SUBMITTED_AT_DESC) {{
      nodes {{ formName url submittedAt signature }}
    }}
    {_top("product")}
    {_top("brand")}
    {_top("category")}
    lastRedemption: redemptionsByOrgIdAndPersonaId(first: 1, orderBy: [REDEEMED_AT_DESC, ROW_ID_DESC]) {{
      nodes {{ redeemedAt discountName status }}
    }}
    pointsEntriesByOrgIdAndPersonaId(first: $first, orderBy: [CREATED_AT_DESC, ROW_ID_DESC]) {{
      {_PAGE}
      nodes {{ id kind delta balanceAfter note actor createdAt orderByOrgIdAndOrderId {{ id externalId }} }}
    }}
    ordersByOrgIdAndPersonaId(first: $first, orderBy: [PLACED_AT_DESC, ROW_ID_DESC]) {{
      {_PAGE}
      nodes {{
        id externalId placedAt subtotalCents taxCents totalCents itemCount
        storeByOrgIdAndStoreId {{ id name }}
        orderLinesByOrgIdAndOrderId(orderBy: LINE_NO_ASC) {{
          nodes {{ product brand category quantity unitPriceCents }}
        }}
        pointsEntriesByOrgIdAndOrderId {{ nodes {{ kind delta }} }}
      }}
    }}
    messagesByOrgIdAndPersonaId(first: $first, orderBy: [SENT_AT_DESC, ROW_ID_DESC]) {{
      {_PAGE} nodes {{ id direction channel body campaign sentAt }}
    }}
    redemptionsByOrgIdAndPersonaId(first: $first, orderBy: [REDEEMED_AT_DESC, ROW_ID_DESC]) {{
      {_PAGE} nodes {{ id discountName points status redeemedAt actor }}
    }}
    mergesByOrgIdAndSurvivorId(first: $first, orderBy: [MERGED_AT_DESC, ROW_ID_DESC]) {{
      {_PAGE}
      nodes {{ id kind mergedNumber reason actor mergedAt undoneAt personaByOrgIdAndSurvivorId {{ id number }} }}
    }}
    mergesByOrgIdAndMergedId(first: $first, orderBy: [MERGED_AT_DESC, ROW_ID_DESC]) {{
      {_PAGE}
      nodes {{ id kind mergedNumber reason actor mergedAt undoneAt personaByOrgIdAndSurvivorId {{ id number }} }}
    }}
    surveySubmissionsByOrgIdAndPersonaId(first: $first, orderBy: [SUBMITTED_AT_DESC, ROW_ID_DESC]) {{
      {_PAGE} nodes {{ id surveyName status submittedAt answers }}
    }}
    personaActionsByOrgIdAndPersonaId(first: $first, orderBy: [OCCURRED_AT_DESC, ROW_ID_DESC]) {{
      {_PAGE} nodes {{ id kind campaign detail occurredAt }}
    }}
    pixelEventsByOrgIdAndPersonaId(first: $first, orderBy: [OCCURRED_AT_DESC, ROW_ID_DESC]) {{
      {_PAGE} nodes {{ id site event url occurredAt }}
    }}
  }}
}}
"""


def peer_variables(org_id: uuid.UUID, persona_id: uuid.UUID) -> dict[str, Any]:
    return {"orgId": str(org_id), "id": str(persona_id)}
