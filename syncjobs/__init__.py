"""The `syncjobs` command: wiring of the API, the worker and the executor into processes."""
