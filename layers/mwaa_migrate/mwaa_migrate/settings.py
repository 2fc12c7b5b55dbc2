"""Settings read once at cold start from the function's environment: a missing one fails at once."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    # The stack's bucket, used when the request names none.
    migration_bucket: str = Field(alias="MIGRATION_BUCKET", min_length=3)
    # Names of the temporary inline policies start with this, so they are easy to find and remove.
    policy_name_prefix: str = Field(default="mwaa-migrate", alias="POLICY_NAME_PREFIX")
    # https on AWS; the local emulation serves the CLI endpoint over plain http.
    mwaa_cli_scheme: Literal["https", "http"] = Field(default="https", alias="MWAA_CLI_SCHEME")


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.model_validate(dict(os.environ))
