"""Read-side documents (models.documents.Document): camelCase from MongoDB, snake_case from Python."""

from models.sync_job import StoredRetryPolicy


def test_a_stored_document_built_in_python_by_field_name_keeps_what_it_was_given():
    # Read models drop fields they do not know; a field name must not be taken for one of those.
    policy = StoredRetryPolicy(max_attempts=4, backoff_seconds=5)
    assert (policy.max_attempts, policy.backoff_seconds) == (4, 5)


def test_a_stored_document_is_read_by_its_camel_case_names():
    policy = StoredRetryPolicy.model_validate({"maxAttempts": 5, "unknownLater": True})
    assert policy.max_attempts == 5
    assert policy.model_dump(by_alias=True)["maxAttempts"] == 5
