"""Feedback on answers and their follow-up suggestions (API.md, "Beyond the seeds")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kallo.models.common import ApiModel, ResponseModel, Text

Rating = Literal["like", "dislike"]
# A comment says why, in a few sentences.
COMMENT_LIMIT = 2000
Comment = Text(COMMENT_LIMIT)


class FeedbackSet(ApiModel):
    rating: Rating
    comment: Comment | None = None


class Feedback(ResponseModel):
    step_id: str = Field(alias="stepId")
    user_id: str = Field(alias="userId")
    rating: Rating
    comment: str | None = None
    created_at: str = Field(alias="createdAt")
    updated_at: str = Field(alias="updatedAt")


class FeedbackCounts(ResponseModel):
    likes: int = 0
    dislikes: int = 0


class Suggestions(ResponseModel):
    suggestions: list[str] = Field(description="At most 3 follow-up questions, written once and kept")


class SuggestionsPending(ResponseModel):
    retry_after: str = Field(alias="retryAfter", description="When to ask again (RFC 3339)")
