"""Report a finished manual sync to the user who started it: in-app notification and e-mail (SES).

Seed 000 "Notifications and troubleshooting": only manual syncs notify, only their starter, once per
company entity; the message says how many items were synced and how many skipped, and links to the details.
"""

from __future__ import annotations

import html
from typing import Any

from connector.models import Component


def summarise(run: dict[str, Any]) -> tuple[str, list[str]]:
    """(title, lines): one line per component that did something, e.g. "Outgoing invoices: 12 synced, 1 skipped"."""
    lines = []
    for component in Component:
        c = run["components"].get(component.value, {})
        synced, skipped = int(c.get("synced", 0)), int(c.get("skipped", 0))
        if synced or skipped or c.get("status") == "Error":
            text = f"{component.label}: {synced} synced"
            if skipped:
                text += f", {skipped} skipped"
            if c.get("status") == "Error":
                text += f" - error: {c.get('error', 'stopped')}"
            lines.append(text)
    if not lines:
        lines.append("No changes: everything was already in step.")
    title = f"Accounting sync finished: {run['status']}"
    return title, lines


class Notifier:
    """Writes the in-app notification and sends the e-mail (HTML + text parts) for a finished manual run."""

    def __init__(self, stores: Any, ses_client: Any, sender: str, details_url: str = "https://focus.example.com/settings/accounting/runs/") -> None:
        self.stores = stores
        self.ses = ses_client
        self.sender = sender
        self.details_url = details_url

    def render(self, run: dict[str, Any]) -> tuple[str, str, str]:
        """(subject, text body, HTML body) for ``run``."""
        title, lines = summarise(run)
        link = self.details_url + run["run_id"]
        text = "\n".join([title, "", *lines, "", f"Details: {link}"])
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        body = (
            f"<html><body><h1>{html.escape(title)}</h1><ul>{items}</ul>"
            f'<p><a href="{html.escape(link)}">View details</a></p></body></html>'
        )
        return title, text, body

    def __call__(self, run: dict[str, Any]) -> None:
        subject, text, body = self.render(run)
        user = run["started_by"]
        self.stores.add_notification(run["account_id"], user, title=subject, body=text, run_id=run["run_id"], link=self.details_url + run["run_id"])
        email = run.get("started_by_email")
        if email:
            self.ses.send_email(
                Source=self.sender,
                Destination={"ToAddresses": [email]},
                Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}, "Html": {"Data": body}}},
            )
