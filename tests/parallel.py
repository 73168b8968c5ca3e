"""Which tests pytest-xdist must keep together: `make test` spreads the suite over two worker processes
(`-n 2 --dist loadgroup`), and every test not named here goes wherever a worker is free.

A module goes in a group when its tests share a module-scoped fixture that is costly to make twice (a
cluster of processes, a browser, one long hypothesis run), or when it starts processes of its own whose
timing it asserts: such modules share one group, so they run one after another on one worker and never
beside each other.

The groups are read from this table by the scheduler below, not from `xdist_group` marks: xdist 3.8 routes
a mark by renaming the test's node id through an attribute pytest 9 no longer reads, so marks group nothing.
"""

import pytest

# Module path -> group.
GROUPS = {
    # Processes: an API and three workers on the wire server, asserting takeover times.
    "tests/test_replicas.py": "processes",
    # Processes: a live `syncjobs api` the fuzzer calls thousands of times.
    "tests/api/test_schemathesis.py": "processes",
    # Processes: an API and two or three workers on the wire server, killed and stopped for a minute.
    "tests/test_chaos_processes.py": "processes",
    # Processes: `syncjobs dev` and chromium.
    "tests/api/ui/test_dashboard_in_browser.py": "processes",
    # One seeded hypothesis run of the chaos world, shared by the module's tests.
    "tests/worker/test_chaos.py": "chaos",
    # The client generated once by openapi-python-client (a subprocess), shared by the module's tests.
    "tests/api/test_generated_client.py": "generated-client",
}


def group_of(nodeid: str) -> str:
    """The unit of work a test goes in: its module's group, or the test alone."""
    return GROUPS.get(nodeid.split("::", 1)[0], nodeid)


def distinct(nodeids: list[str]) -> list[str]:
    """The node ids with each repeat numbered (`id#2`, `id#3`), in the same order."""
    seen: dict[str, int] = {}
    numbered = []
    for nodeid in nodeids:
        seen[nodeid] = seen.get(nodeid, 0) + 1
        numbered.append(nodeid if seen[nodeid] == 1 else f"{nodeid}#{seen[nodeid]}")
    return numbered


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class GroupedLoad(LoadGroupScheduling):
        def add_node_collection(self, node, collection) -> None:
            # Schemathesis gives its 56 cases one node id; a unit of work keys its tests by node id, so
            # without a mark of their own all but the first would silently never run.
            super().add_node_collection(node, distinct(collection))

        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return GroupedLoad(config, log)
