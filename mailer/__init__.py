"""Mailer: email-first communications for the officers of a local Labour Party."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    """A top-level folder (templates/, campaigns/): inside the package when installed from a
    wheel, beside it in a checkout."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PACKAGE_DIR.parent / name


TEMPLATES_DIR = _shipped("templates")
CAMPAIGNS_DIR = _shipped("campaigns")


def create_app(test_config: dict | None = None) -> Flask:
    """Build the Mailer web app: each step below owns one concern."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("MAILER_INSTANCE_PATH") or None,
        instance_relative_config=True,
        template_folder=str(TEMPLATES_DIR),
    )
    configure_settings(app, test_config)
    configure_database(app)
    configure_security(app)
    configure_mail(app)
    configure_queue(app)
    configure_views(app)
    configure_api(app)
    configure_cli(app)
    return app


def configure_settings(app: Flask, test_config: dict | None) -> None:
    from mailer import config

    config.load_config(app, test_config)


def configure_database(app: Flask) -> None:
    from mailer import db, work

    db.init_app(app)
    work.init_app(app)  # work queued after the commit that asked for it


def configure_security(app: Flask) -> None:
    from mailer import auth

    auth.init_app(app)


def configure_mail(app: Flask) -> None:
    from mailer import mail

    mail.init_app(app)


def configure_queue(app: Flask) -> None:
    from mailer import jobs, queue

    queue.init_app(app)
    jobs.init_app(app)


def configure_views(app: Flask) -> None:
    from mailer import web

    web.init_app(app)


def configure_api(app: Flask) -> None:
    from mailer import api

    api.init_app(app)


def configure_cli(app: Flask) -> None:
    from mailer import cli

    cli.init_app(app)
