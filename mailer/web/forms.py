"""A page's form read into its action's input schema (mailer.inputs), the one the API validates
with: the only place a page reads `request.form`.

`parse(Schema)` reads each of the schema's fields from the form: a list from every value sent
under its name (checkbox groups, multiple selects), a yes/no from a checkbox (unticked: not sent,
so False) or a select, an empty box as None where the field may be left out, and a field not on
the form as not given (so a form that carries only some fields changes only those). A nested
schema (a campaign's segment) is read from the fields under its prefix, when the view names it.
What the schema refuses raises `mailer.inputs.InputInvalid` (422) naming each field, in the same
words and the same shape as the API's problem+json; the page's handler (mailer.web.refused) or the
view's own form shows them beside what was typed.
"""

from __future__ import annotations

import types
from typing import Annotated, Union, get_args, get_origin

from flask import request
from pydantic import BaseModel

from mailer.inputs import validate


def parse(schema: type[BaseModel], prefixes: dict[str, str] | None = None, names: dict[str, str] | None = None,
          **given):
    """The submitted form as `schema` (or InputInvalid). `prefixes` maps a nested schema's field
    (e.g. "segment", "segment.exclude") to its inputs' prefix ("seg_", "ex_"); `names` maps a
    field to its input's name where the page's differs (the API's "at" is the form's "send_at");
    `given` adds values the page knows, which the form cannot override."""
    return validate(schema, read(schema, prefixes, names=names) | given)


def rows(schema: type[BaseModel], count: int) -> list:
    """Rows of a table form (inputs named "title-0", "title-1", ...), each read into `schema`."""
    return [validate(schema, read(schema, suffix=f"-{n}")) for n in range(count)]


def keyed(prefix: str, keys) -> dict:
    """The text inputs named prefix + key, for each key the form carried ("text-12" for item 12)."""
    return {key: request.form[f"{prefix}{key}"] for key in keys if f"{prefix}{key}" in request.form}


def submitted(*names: str) -> dict[str, str]:
    """The named fields as typed (for a form shown again); missing ones as empty text."""
    return {name: request.form.get(name, "") for name in names}


def sent(name: str) -> bool:
    """Whether the form carried the field at all (a marker, a button's name)."""
    return name in request.form


def read(schema: type[BaseModel], prefixes: dict[str, str] | None = None, prefix: str = "", path: str = "",
         names: dict[str, str] | None = None, suffix: str = "") -> dict:
    """The form's values for `schema`'s fields, as the schema reads them (not yet validated)."""
    form, prefixes, names, data = request.form, prefixes or {}, names or {}, {}
    for name, info in schema.model_fields.items():
        core, optional = _core(info.annotation)
        key = prefix + names.get(path + name, name) + suffix
        if isinstance(core, type) and issubclass(core, BaseModel):
            nested = prefixes.get(path + name)
            if nested is not None:
                data[name] = read(core, prefixes, nested, f"{path}{name}.")
        elif get_origin(core) is list:
            if key in form:
                data[name] = [v for v in form.getlist(key) if v.strip()]
            elif not optional and info.is_required():
                data[name] = []  # nothing ticked
        elif core is bool:
            if key in form:
                data[name] = form[key] or False
            elif not optional:
                data[name] = False  # an unticked checkbox is not sent
        elif key in form:
            value = form[key]
            data[name] = None if optional and not value.strip() else value
    return data


def _core(annotation) -> tuple[object, bool]:
    """(the type, whether None is allowed), through Optional and Annotated."""
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation, optional
