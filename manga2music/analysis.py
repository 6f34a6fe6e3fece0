"""The structured analysis every describer writes (stage 1 of two-stage prompting).

One pydantic schema shared by the OpenAI, transformers and builtin describers,
so the analysis files look the same whichever model wrote them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GENRES = ("comedy", "humor", "romance", "sci-fi", "horror", "action", "drama", "conversation")


class SectionAnalysis(BaseModel):
    """What a describer saw in a section's pages (the stage-1 answer)."""

    model_config = ConfigDict(extra="ignore")

    genre: str = Field(description="One of: " + ", ".join(GENRES) + " (or the closest word)")
    atmosphere: str = Field(description="The emotional atmosphere in a few words")
    focus: Literal["dialogue", "visual"] = Field(description="dialogue-driven or visual-driven")
    pacing: str = Field(description="slow, moderate, fast or frantic, with a few words why")
    plot: str = Field(default="", description="What happens, in one or two sentences")


class ChunkRecord(BaseModel):
    """Which pages one request covered, and what it answered."""

    pages: list[str]
    analysis: SectionAnalysis | None = None


class DescribeResult(BaseModel):
    """What a describer returns for one section."""

    description: str
    analysis: SectionAnalysis | None = None
    chunks: list[ChunkRecord] = Field(default_factory=list)
    features: dict | None = None  # measured numbers (builtin describer)
    usage: dict[str, int] | None = Field(default_factory=dict)  # prompt_tokens, completion_tokens; None: unknown
    cost_usd: float | None = None
    prompt_version: str | None = None
    warnings: list[str] = Field(default_factory=list)
