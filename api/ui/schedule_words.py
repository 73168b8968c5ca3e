"""A cron schedule in words, with its time zone: "At 09:00, Monday through Friday, America/New_York"."""

from functools import lru_cache

from cron_descriptor import ExpressionDescriptor, FormatException, Options

# cron-descriptor reads five-field expressions only; these are the macros croniter accepts.
MACRO_EXPRESSIONS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@lru_cache(maxsize=1024)
def cron_in_words(cron: str) -> str:
    """The expression in English, 24-hour clock; the expression itself where it cannot be put in words."""
    text = cron.strip()
    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        return ExpressionDescriptor(MACRO_EXPRESSIONS.get(text, text), options).get_description()
    except (FormatException, ValueError, KeyError, IndexError):
        return text


def schedule_in_words(cron: str, timezone: str) -> str:
    return f"{cron_in_words(cron)}, {timezone}"
