"""The scheduler process: leader election, the cron schedule, and the life of every execution."""
