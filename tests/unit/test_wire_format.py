"""Pure pieces of the wire format: timestamps, error messages, settings parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from jobqueue.api.errors import validation_message
from jobqueue.config import Settings
from jobqueue.domain.jobs import iso_ms


def test_timestamps_are_utc_with_milliseconds_and_z() -> None:
    moment = datetime(2026, 5, 4, 12, 0, 0, 123_999, tzinfo=timezone(timedelta(hours=2)))
    assert iso_ms(moment) == "2026-05-04T10:00:00.123Z"


def test_whole_seconds_still_show_milliseconds() -> None:
    assert iso_ms(datetime(2026, 5, 4, tzinfo=UTC)) == "2026-05-04T00:00:00.000Z"


def test_validation_messages_name_the_field_and_where_it_was() -> None:
    errors = [
        {"loc": ("query", "limit"), "msg": "Input should be less than or equal to 500"},
        {"loc": ("body", "type"), "msg": "Field required"},
    ]
    assert validation_message(errors) == (
        "querystring/limit: Input should be less than or equal to 500; body/type: Field required"
    )


def test_bad_json_is_reported_without_parser_internals() -> None:
    errors = [{"loc": ("body", 7), "type": "json_invalid", "msg": "Expecting value at 7"}]
    assert validation_message(errors) == "body: invalid JSON"


def test_the_node_services_redis_host_and_port_are_understood() -> None:
    settings = Settings(_env_file=None, redis_url=None, redis_host="cache", redis_port=6380)
    assert settings.queue_url == "redis://cache:6380"


def test_redis_url_wins_over_host_and_port() -> None:
    settings = Settings(_env_file=None, redis_url="redis://a:1/2", redis_host="b")
    assert settings.queue_url == "redis://a:1/2"


def test_comma_separated_settings_become_lists() -> None:
    settings = Settings(_env_file=None, cors_origin="http://a, http://b,", api_keys="k1")
    assert settings.cors_origin == ["http://a", "http://b"]
    assert settings.api_keys == ["k1"]
