"""Who this worker is, as operators read it in the lock documents."""

import os
import socket
import uuid


def new_worker_id() -> str:
    """`host:pid:shortuuid`: the uuid tells replicas apart where every container's pid is 1."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
