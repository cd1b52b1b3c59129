"""/api/v1/segments/count: how many members a segment reaches, before a campaign uses it."""

from __future__ import annotations

from mailer import scope
from mailer.api import bp, officer, responses, spec
from mailer.api.schemas import SegmentCount
from mailer.inputs import SegmentCountIn
from mailer.members import segments
from mailer.models import Stream


@bp.post("/segments/count")
@spec.validate(json=SegmentCountIn, resp=responses(SegmentCount), tags=["segments"])
def count_segment(json: SegmentCountIn):
    """Members matching a segment, and the addresses that would receive a campaign on the stream."""
    definition = segments.clean(json.segment.model_dump(mode="json", exclude_none=True))
    scope.segment_definition(officer(), definition)  # a branch secretary counts their own branch only
    return SegmentCount(**segments.remembered_count(definition, Stream(json.stream), officer()))
