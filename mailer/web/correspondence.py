"""The correspondence log: the inbox of threads, a thread with its messages, replies and notes,
and the side views (bounces, auto-replies, messages whose processing failed).

The rules live in mailer.inbound.correspondence; these views read the request, call it, and show
what it says. Anything out of the officer's branch answers 404, as if it did not exist.
"""

from __future__ import annotations

from flask import (Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request,
                   url_for)
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import SQLAlchemyError

from mailer import scope
from mailer.db import session
from mailer.errors import Invalid
from mailer.inputs import AssignIn, NoteIn, ReplyIn, StatusIn
from mailer.inbound import correspondence as service
from mailer.inbound import imap
from mailer.models import InboundKind, InboundStatus, ThreadStatus
from mailer.pagination import Cursor
from mailer.web import downloads, forms

bp = Blueprint("correspondence", __name__, url_prefix="/correspondence")

# Inbound HTML, already sanitised, shown inside <iframe sandbox="">: nothing may run or load, and
# only our own pages may frame it. Opened directly (not framed), the CSP sandbox still gives it a
# unique origin of its own.
MESSAGE_HTML_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
                        "X-Frame-Options": "SAMEORIGIN"}


@bp.app_context_processor
def _unread_badge():
    """`correspondence_unread()` for the navigation: counted only when a page asks for it."""
    def unread() -> int:
        if not current_user.is_authenticated:
            return 0
        try:
            return service.unread_count(current_user)
        except SQLAlchemyError:  # an error page after a failed transaction: the badge is not worth a second error
            return 0

    return {"correspondence_unread": unread}


def _checked_form() -> None:
    """Refuse a POST without a valid CSRF token (CSRFProtect answers first when it is on)."""
    if not FlaskForm().validate_on_submit():
        abort(400)


def _thread_or_404(thread_id: int):
    thread = scope.get_thread(current_user, thread_id)
    if thread is None:
        abort(404)  # the same answer for "no such thread" and "another branch's"
    return thread


def _message_or_404(message_id: int):
    message = scope.get_message(current_user, message_id)
    if message is None:
        abort(404)
    return message


# --- the inbox --------------------------------------------------------------------------------

STATUS_CHOICES = {"needs_action": ThreadStatus.NEEDS_ACTION, "actioned": ThreadStatus.ACTIONED, "all": None}


def _query_from_args() -> service.ThreadQuery:
    args = request.args
    status = args.get("status", "needs_action")
    return service.ThreadQuery(
        status=STATUS_CHOICES.get(status, ThreadStatus.NEEDS_ACTION),
        campaign_id=args.get("campaign", type=int),
        branch_id=args.get("branch", type=int),
        assigned_to_id=current_user.id if args.get("mine") == "1" else None,
        unread=args.get("unread") == "1",
        q=args.get("q", "")[:200],
        cursor=Cursor.from_args(args),
    )


@bp.route("/")
def index():
    tq = _query_from_args()
    page = service.list_threads(current_user, tq, per_page=current_app.config["PAGE_SIZE"])
    status = request.args.get("status", "needs_action")
    return render_template("web/correspondence/inbox.html", page=page, tq=tq,
                           status=status if status in STATUS_CHOICES else "needs_action",
                           counts=service.counts(current_user), choices=service.filter_choices(current_user),
                           args=request.args.to_dict(), mailbox=imap.poll_progress())


@bp.route("/mailbox.json")
def mailbox_json():
    """How far the IMAP poll has gone (counts only), for the pages that show it live."""
    return jsonify(imap.poll_progress() or {"live": False, "percent": 0, "text": ""})


# --- a thread ---------------------------------------------------------------------------------

@bp.route("/<int:thread_id>")
def thread(thread_id: int):
    thread = _thread_or_404(thread_id)
    entries, page = service.timeline(thread, Cursor.from_args(request.args), current_app.config["PAGE_SIZE"])
    service.mark_read(current_user, thread)  # opening the page is reading it
    messages = [e.item for e in entries if e.kind == "message"]
    chosen = request.args.get("reply_to", type=int)
    answering = next((m for m in messages if m.id == chosen), None)
    if answering is None and chosen:  # a message on another page of a long thread
        answering = scope.thread_message(thread, chosen)
    answering = answering or (service.last_inbound(thread) if not page.at_end else None) or \
        (messages[-1] if messages else None)
    members = {m.member for m in messages if m.member is not None} | ({thread.member} if thread.member else set())
    return render_template("web/correspondence/thread.html", thread=thread, entries=entries, messages=messages, page=page,
                           answering=answering, officers=service.assignable(current_user, thread),
                           visible_members={m.id for m in members if scope.can_see_member(current_user, m)}, form=FlaskForm())


def _back(thread_id: int, anchor: str = ""):
    return redirect(url_for(".thread", thread_id=thread_id) + (f"#{anchor}" if anchor else ""))


@bp.route("/<int:thread_id>/status", methods=["POST"])
def status(thread_id: int):
    thread = _thread_or_404(thread_id)
    _checked_form()
    value = forms.parse(StatusIn).status  # as POST /api/v1/threads/{id}/status
    service.set_status(current_user, thread, value)
    flash("Marked as actioned." if value == ThreadStatus.ACTIONED else "Marked as needing action.", "info")
    return _back(thread.id)


@bp.route("/<int:thread_id>/assign", methods=["POST"])
def assign(thread_id: int):
    thread = _thread_or_404(thread_id)
    _checked_form()
    service.assign(current_user, thread, forms.parse(AssignIn).officer_id)  # as POST /api/v1/threads/{id}/assign
    flash(f"Assigned to {thread.assigned_to.label}." if thread.assigned_to else "Assigned to nobody.", "info")
    return _back(thread.id, "actions")


@bp.route("/<int:thread_id>/notes", methods=["POST"])
def note(thread_id: int):
    thread = _thread_or_404(thread_id)
    _checked_form()
    try:
        note = service.add_note(current_user, thread, forms.parse(NoteIn).text)
        flash("Note added. Notes are internal: they are never sent.", "info")
        return _back(thread.id, f"note-{note.id}")
    except (Invalid, service.CorrespondenceError) as exc:
        session.rollback()
        flash(str(exc), "error")
        return _back(thread.id, "note-form")


@bp.route("/<int:thread_id>/reply", methods=["POST"])
def reply(thread_id: int):
    thread = _thread_or_404(thread_id)
    _checked_form()
    answering = None
    try:
        given = forms.parse(ReplyIn, names={"with_quote": "quote"})  # as POST /api/v1/threads/{id}/reply
        if given.in_reply_to:
            answering = scope.thread_message(thread, given.in_reply_to)
            if answering is None:
                abort(404)
        answer = service.reply(current_user, thread, answering, given.body, with_quote=given.with_quote)
        flash(f"Your reply to {answer.to_address} is on its way.", "info")
        return _back(thread.id, f"reply-{answer.id}")
    except (Invalid, service.CorrespondenceError) as exc:
        session.rollback()
        flash(str(exc), "error")
        return _back(thread.id, "reply-form")


@bp.route("/reply/<int:reply_id>/resend", methods=["POST"])
def resend(reply_id: int):
    answer = service.get_reply(current_user, reply_id)
    if answer is None:
        abort(404)
    _checked_form()
    service.resend(current_user, answer)
    flash("The reply is queued again.", "info")
    return _back(answer.thread_id, f"reply-{answer.id}")


# --- one message: its page, its HTML, its raw form, its attachments --------------------------

@bp.route("/message/<int:message_id>")
def message(message_id: int):
    """A message on its own: for auto-replies, bounces and failures, which have no thread."""
    message = _message_or_404(message_id)
    if message.thread_id is not None:
        return redirect(url_for(".thread", thread_id=message.thread_id) + f"#message-{message.id}")
    back = {InboundKind.AUTO_REPLY: ".auto_replies", InboundKind.BOUNCE: ".bounces"}.get(message.kind, ".index")
    if message.status is InboundStatus.FAILED:
        back = ".failed"
    return render_template("web/correspondence/message.html", message=message, form=FlaskForm(), back=url_for(back),
                           visible_members={message.member_id} if message.member is not None
                           and scope.can_see_member(current_user, message.member) else set())


@bp.route("/message/<int:message_id>/html")
def message_html(message_id: int):
    message = _message_or_404(message_id)
    if not message.html_safe:
        abort(404)
    page = ('<!doctype html><html><head><meta charset="utf-8">'
            '<style>body{font-family:system-ui,sans-serif;font-size:15px;line-height:1.45;margin:.6rem;color:#1d1d1f}'
            'blockquote{border-left:3px solid #ccc;margin:.4rem 0;padding-left:.6rem;color:#545458}'
            'img{max-width:100%}table{max-width:100%}</style></head><body>'
            f"{message.html_safe}</body></html>")
    return Response(page, mimetype="text/html", headers=MESSAGE_HTML_HEADERS)


@bp.route("/message/<int:message_id>/raw")
def message_raw(message_id: int):
    message = _message_or_404(message_id)
    if not message.raw:  # emptied by the retention job (mailer/retention.py)
        flash(f"The raw copy of this message was deleted after {current_app.config['RETAIN_RAW_INBOUND_DAYS']} days, "
              "as the data-protection policy says; its text and attachments are kept.", "info")
        return redirect(url_for(".thread", thread_id=message.thread_id) if message.thread_id else url_for(".index"))
    service.download_audit(current_user, "raw", message)
    return Response(message.raw, mimetype="message/rfc822",
                    headers={"Content-Disposition": f"attachment; filename=message-{message.id}.eml",
                             "Content-Security-Policy": downloads.DOWNLOAD_CSP})


@bp.route("/attachment/<int:attachment_id>")
def attachment(attachment_id: int):
    attachment = scope.get_attachment(current_user, attachment_id)
    if attachment is None:
        abort(404)
    service.download_audit(current_user, "attachment", attachment.message, note=attachment.filename)
    # A dangerous file (a program, a script, a web page) is only ever bytes to save, never a type to open.
    return downloads.download(attachment.data, attachment.filename or f"attachment-{attachment.id}",
                              None if attachment.dangerous else attachment.content_type)


@bp.route("/message/<int:message_id>/retry", methods=["POST"])
def retry(message_id: int):
    message = _message_or_404(message_id)
    _checked_form()
    service.retry_processing(current_user, message)
    flash("Processing again: the message will appear where it belongs once it is done.", "info")
    return redirect(url_for(".failed"))


# --- side views -------------------------------------------------------------------------------

@bp.route("/failed")
def failed():
    per_page = current_app.config["PAGE_SIZE"]
    return render_template("web/correspondence/failed.html", form=FlaskForm(),
                           page=service.failed_messages(current_user, Cursor.from_args(request.args), per_page))


@bp.route("/bounces")
def bounces():
    per_page = current_app.config["PAGE_SIZE"]
    return render_template("web/correspondence/bounces.html", form=FlaskForm(),
                           page=service.bounce_events(current_user, Cursor.from_args(request.args), per_page),
                           on_hold=service.on_hold(current_user), to_confirm=service.reports_to_confirm(current_user))


@bp.route("/message/<int:message_id>/confirm", methods=["POST"])
def confirm_report(message_id: int):
    """Act on a bounce or complaint that named addresses only, once a CLP officer has checked it."""
    from mailer.inbound import process

    message = _message_or_404(message_id)
    _checked_form()
    try:
        acted = process.confirm_report(current_user, message)
    except PermissionError:
        abort(403)
    flash(f"Confirmed: {', '.join(acted) or 'no address'} acted on.", "info")
    return redirect(url_for(".bounces"))


@bp.route("/auto-replies")
def auto_replies():
    per_page = current_app.config["PAGE_SIZE"]
    return render_template("web/correspondence/auto_replies.html",
                           page=service.auto_replies(current_user, Cursor.from_args(request.args), per_page))
