"""Settings read from the environment (set by ``template.yaml`` in the cloud, by the local stack locally)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    """Environment of the connector's functions. Names match ``template.yaml`` Globals."""

    settings_table: str
    runs_table: str
    notifications_table: str
    secrets_prefix: str
    host_api_base_url: str
    state_machine_arn: str | None
    sender_email: str
    batch_size: int
    tool_base_urls: dict[str, str]
    region: str | None

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        return cls(
            settings_table=env["SETTINGS_TABLE"],
            runs_table=env["RUNS_TABLE"],
            notifications_table=env["NOTIFICATIONS_TABLE"],
            secrets_prefix=env.get("SECRETS_PREFIX", "connector/"),
            host_api_base_url=env.get("HOST_API_BASE_URL", "https://api.focus.teamleader.eu"),
            state_machine_arn=env.get("STATE_MACHINE_ARN"),
            sender_email=env.get("SENDER_EMAIL", "no-reply@connector.example.com"),
            batch_size=int(env.get("BATCH_SIZE", "25")),
            tool_base_urls={
                tool: env[f"{tool.upper()}_BASE_URL"] for tool in ("exact", "octopus", "yuki") if env.get(f"{tool.upper()}_BASE_URL")
            },
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        )

    def secret_id(self, *parts: str) -> str:
        """The Secrets Manager name for a connection, e.g. ``connector-prod/{account}/{entity}/exact``."""
        return self.secrets_prefix + "/".join(parts)
