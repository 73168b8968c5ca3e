"""Jobs as the API writes them now (a read-side view without input checks, written by pydantic-core) say
exactly what the checked view dumped through json.dumps said, for every stored job that passes the checks:
the same fields in the same order, the same values and types, the same date and id text."""

import json
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from api.responses import json_response, page_response, view_response
from models.documents import Document, IdText
from models.sync_job import JobStatus, StoredSchedule, SyncJobSpec, SyncJobView, new_job_document


class CheckedJobView(SyncJobSpec, JobStatus):
    """The job view as it was before reads stopped re-running the input checks: the oracle."""

    model_config = Document.model_config

    id: IdText = Field(alias="_id", serialization_alias="id")
    schedule: StoredSchedule  # type: ignore[assignment]
    entities: list[str] | None = None
    workspace_id: str
    version: int
    created_at: datetime
    updated_at: datetime


def as_before(doc: dict) -> dict:
    return CheckedJobView.model_validate(doc).model_dump(by_alias=True, mode="json")


# What our writers store: BSON keeps milliseconds, and the driver hands dates back in UTC.
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))
texts = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)
numbers = st.one_of(
    st.integers(min_value=0, max_value=86_400), st.floats(min_value=0, max_value=86_400, allow_nan=False)
)


@st.composite
def stored_jobs(draw) -> dict:
    spec = SyncJobSpec.model_validate(
        {
            "name": draw(texts),
            "description": draw(st.text(max_size=60)),
            "dataSourceId": str(ObjectId()),
            "destinationDatabaseId": str(ObjectId()),
            "schedule": {"cron": "*/5 * * * *", "timezone": draw(st.sampled_from(["UTC", "Europe/Berlin"]))},
            "entities": draw(st.one_of(st.none(), st.lists(texts, min_size=1, max_size=3, unique=True))),
            "requiredLabel": draw(st.one_of(st.none(), st.just("gpu"))),
        }
    )
    created = draw(moments)
    doc = new_job_document(draw(texts), spec, created)
    doc["_id"] = ObjectId()
    doc["updatedAt"] = created + timedelta(milliseconds=draw(st.integers(min_value=0, max_value=10**9)))
    doc["version"] = draw(st.integers(min_value=1, max_value=10**6))
    # The worker's fields, as it writes them: counts, dates, an average that may be whole.
    for field in ("lastRunAt", "lastSuccessAt", "nextRunAt", "scheduleAppliedAt"):
        doc[field] = draw(st.one_of(st.none(), moments))
    doc["lastRunStatus"] = draw(st.one_of(st.none(), st.sampled_from(["succeeded", "failed"])))
    doc["lastError"] = draw(st.one_of(st.none(), st.text(max_size=80)))
    doc["avgDurationMs"] = draw(st.one_of(st.none(), numbers))
    doc["runCount"] = draw(st.integers(min_value=0, max_value=10**9))
    doc["scheduleAppliedVersion"] = draw(st.one_of(st.none(), st.just(doc["version"])))
    doc["cursors"] = {"customers": {"updatedSince": draw(st.text(max_size=20))}}
    # A retry policy stored before its numbers were written as floats; a document missing later fields.
    doc["retry"] = {
        "maxAttempts": draw(st.integers(min_value=1, max_value=20)),
        "backoffSeconds": draw(numbers),
        "backoffMultiplier": draw(st.sampled_from([1, 2, 1.5])),
        "maxBackoffSeconds": draw(numbers),
    }
    optional = ["requiredLabel", "misfireGraceSeconds", "overlapPolicy", "retry", "description"]
    optional.append("timeoutSeconds")
    for field in draw(st.sets(st.sampled_from(optional))):
        del doc[field]
    return doc


def as_json_dumps_said(body) -> str:
    """The content of a JSON text, written one way: key order, int or float, and text all kept."""
    return json.dumps(json.loads(body))


@settings(max_examples=150, deadline=None)
@given(docs=st.lists(stored_jobs(), max_size=6), cursor=st.one_of(st.none(), st.just("eyJpZCI6IjEifQ")))
def test_a_page_of_jobs_says_what_the_dumped_views_said(docs, cursor):
    before = json.dumps({"items": [as_before(doc) for doc in docs], "nextCursor": cursor})
    assert as_json_dumps_said(page_response(SyncJobView, docs, cursor).body) == as_json_dumps_said(before)


@settings(max_examples=100, deadline=None)
@given(doc=stored_jobs())
def test_one_job_says_what_its_dumped_view_said(doc):
    response = view_response(SyncJobView, doc, headers={"ETag": '"3"'})
    assert as_json_dumps_said(response.body) == as_json_dumps_said(json.dumps(as_before(doc)))
    assert response.headers["ETag"] == '"3"'


def test_a_view_is_written_as_json_in_utf_8():
    response = json_response({"name": "Zürich 東京"}, status=201)
    assert (response.status, response.content_type, response.charset) == (201, "application/json", "utf-8")
    assert json.loads(response.body) == {"name": "Zürich 東京"}
