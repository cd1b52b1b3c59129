"""The data-protection page: what Mailer stores, why, and for how long, for every officer.
The periods are read from the settings, so the page cannot drift from what the job does."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from mailer import retention

bp = Blueprint("privacy", __name__, url_prefix="/data-protection")


@bp.route("/")
def index():
    last_run = retention.last_run()
    cfg = current_app.config
    return render_template("web/privacy.html", days=retention.periods(), last_run=last_run,
                           every_hours=int(cfg["RETENTION_SECONDS"]) // 3600, soft_bounce_days=cfg["SOFT_BOUNCE_DAYS"],
                           imap_folder=cfg["IMAP_PROCESSED_FOLDER"] if cfg.get("IMAP_HOST") else None)
