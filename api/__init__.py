"""The HTTP API: workspace-scoped sync jobs, their executions, and tokens."""
