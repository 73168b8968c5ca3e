"""Domain errors under one base; the docstring is the default message."""

from typing import Any


class SyncJobsError(Exception):
    """Something went wrong in syncjobs."""

    code = "error"

    def __init__(self, message: str | None = None, *, details: Any = None):
        super().__init__(message or (self.__doc__ or "").strip())
        self.message = message or (self.__doc__ or "").strip()
        self.details = details


class NotFound(SyncJobsError, LookupError):
    """The resource does not exist in this workspace."""

    code = "not_found"


class SyncJobNotFound(NotFound):
    """No such sync job in this workspace."""


class ExecutionNotFound(NotFound):
    """No such execution of this job."""


class ValidationFailed(SyncJobsError, ValueError):
    """The request does not validate."""

    code = "validation_failed"


class Conflict(SyncJobsError):
    """The request conflicts with the resource's current state."""

    code = "conflict"


class VersionMismatch(SyncJobsError):
    """The resource changed since the version named in If-Match."""

    code = "precondition_failed"


class Unauthenticated(SyncJobsError):
    """A valid bearer token is required."""

    code = "unauthenticated"


class Forbidden(SyncJobsError):
    """This token is not valid for this workspace."""

    code = "forbidden"


class StoreUnavailable(SyncJobsError):
    """The database did not answer."""

    code = "store_unavailable"


class JobDisabled(Conflict):
    """The job is disabled; run it anyway with ?evenIfDisabled=true."""

    code = "job_disabled"
