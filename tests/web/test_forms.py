"""Pages read their forms only through mailer/web/forms.py, into the action's input schema
(mailer.inputs), the one the API validates with. A source scan (the AST, so comments and
docstrings do not count) for `request.form` and `request.values` anywhere else in mailer/web."""

from __future__ import annotations

import ast
from pathlib import Path

import mailer

WEB = Path(mailer.__file__).parent / "web"
HELPER = WEB / "forms.py"


def form_reads(source: str, filename: str) -> list[str]:
    """Each `request.form` / `request.values` (read, called or subscripted) in `source`."""
    return [f"{filename}:{node.lineno}: request.{node.attr}" for node in ast.walk(ast.parse(source, filename))
            if isinstance(node, ast.Attribute) and node.attr in ("form", "values")
            and isinstance(node.value, ast.Name) and node.value.id == "request"]


def test_no_page_reads_the_form_but_through_the_helper():
    found = []
    for path in sorted(WEB.glob("*.py")):
        if path != HELPER:
            found += form_reads(path.read_text(encoding="utf-8"), path.name)
    assert found == [], "read the form with mailer.web.forms.parse(Schema):\n" + "\n".join(found)
    assert form_reads(HELPER.read_text(encoding="utf-8"), HELPER.name)  # the helper is where it is read


def test_the_scan_sees_each_way_of_reading_the_form():
    code = ('name = request.form.get("name", "")\n'
            'ids = request.form.getlist("present")\n'
            'body = request.form["body"]\n'
            'member = request.values.get("member")\n'
            '# request.form in a comment is not a read\n'
            'query = request.args.get("q")\n'
            'given = forms.parse(MemberPatch)\n')
    assert len(form_reads(code, "x.py")) == 4
