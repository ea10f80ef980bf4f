"""Custom search attributes operators filter runs by in the Temporal UI."""

from temporalio.common import SearchAttributeKey

ENGAGEMENT_ID = SearchAttributeKey.for_keyword("TollgateEngagementId")
CUSTOMER_ID = SearchAttributeKey.for_keyword("TollgateCustomerId")
MILESTONE_KEY = SearchAttributeKey.for_keyword("TollgateMilestoneKey")
STAGE = SearchAttributeKey.for_keyword("TollgateStage")

ALL = (ENGAGEMENT_ID, CUSTOMER_ID, MILESTONE_KEY, STAGE)
