"""Starters: the ready-made campaigns in `campaigns/`, each a folder of plain files."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mailer import CAMPAIGNS_DIR
from mailer.models import BodyFormat, Stream


@dataclass(frozen=True)
class Starter:
    slug: str
    name: str
    stream: Stream
    subject: str
    preheader: str
    description: str
    body_format: BodyFormat
    body: str
    meetings_flow: bool = False  # notices, cancellations, minutes: sent from a meeting's page


def _load(folder: Path) -> Starter:
    meta = tomllib.loads((folder / "campaign.toml").read_text(encoding="utf-8"))
    mjml = folder / "body.mjml"
    body_file, body_format = (mjml, BodyFormat.MJML) if mjml.exists() else (folder / "body.md", BodyFormat.MARKDOWN)
    return Starter(folder.name, meta["name"], Stream(meta.get("stream", "bulletins")), meta.get("subject", ""),
                   meta.get("preheader", ""), meta.get("description", ""), body_format,
                   body_file.read_text(encoding="utf-8"), bool(meta.get("meetings_flow", False)))


def all_starters(folder: Path = CAMPAIGNS_DIR) -> list[Starter]:
    """Every starter, by name."""
    return sorted((_load(p) for p in folder.iterdir() if (p / "campaign.toml").exists()), key=lambda s: s.name)


def get(slug: str, folder: Path = CAMPAIGNS_DIR) -> Starter | None:
    """The starter in folder `slug`, or None."""
    path = folder / slug
    if "/" in slug or slug.startswith(".") or not (path / "campaign.toml").exists():
        return None
    return _load(path)
