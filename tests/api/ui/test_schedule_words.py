import pytest

from api.ui.schedule_words import cron_in_words, schedule_in_words


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("* * * * *", "Every minute"),
        ("*/5 * * * *", "Every 5 minutes"),
        ("0 * * * *", "Every hour"),
        ("0 9 * * 1-5", "At 09:00, Monday through Friday"),
        ("30 2 1 * *", "At 02:30, on day 1 of the month"),
        ("0 0 * * 0", "At 00:00, only on Sunday"),
        ("15 14 1 1 *", "At 14:15, on day 1 of the month, only in January"),
        ("*/15 9-17 * * MON-FRI", "Every 15 minutes, between 09:00 and 17:59, Monday through Friday"),
        ("@daily", "At 00:00"),
        ("@hourly", "Every hour"),
        ("@weekly", "At 00:00, only on Sunday"),
        ("  0 9 * * 1-5  ", "At 09:00, Monday through Friday"),
    ],
)
def test_common_schedules_read_as_words(cron, words):
    assert cron_in_words(cron) == words


def test_an_expression_without_words_is_shown_as_written():
    assert cron_in_words("not a cron") == "not a cron"


def test_the_zone_follows_the_words():
    assert schedule_in_words("0 9 * * 1-5", "America/New_York") == (
        "At 09:00, Monday through Friday, America/New_York"
    )
