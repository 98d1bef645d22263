"""Unit tests of broker.topic_config: Kafka's topic config names, parsing, resolution."""

from __future__ import annotations

import pytest

from broker import topic_config as tc
from broker.topic_config import ConfigSource, InvalidConfig, InvalidTopicName


def test_every_config_default_parses_back() -> None:
    for name, d in tc.TOPIC_CONFIGS.items():
        text = tc.format_value(name, d.default)
        assert tc.parse_value(name, text) == d.default, name


def test_kafka_defaults_without_broker_config() -> None:
    eff = tc.effective({})
    assert eff["retention.ms"] == 604_800_000  # log.retention.hours=168
    assert eff["segment.ms"] == 604_800_000
    assert eff["segment.bytes"] == 1_073_741_824
    assert eff["cleanup.policy"] == ("delete",)
    assert eff["max.message.bytes"] == 1_048_588
    assert eff["min.insync.replicas"] == 1
    assert eff["message.timestamp.type"] == "CreateTime"
    assert eff["min.cleanable.dirty.ratio"] == 0.5
    assert eff["retention.bytes"] == -1
    assert eff["flush.messages"] == tc.LONG_MAX


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("retention.ms", "abc", "Not a number of type LONG"),
        ("retention.ms", "-2", "Value must be at least -1"),
        ("retention.ms", "1_000", "Not a number of type LONG"),
        ("min.cleanable.dirty.ratio", "0_5", "Not a number of type DOUBLE"),
        ("segment.bytes", "13", "Value must be at least 14"),
        ("segment.bytes", str(2**31), "Not a number of type INT"),
        ("cleanup.policy", "compact,banana", "String must be one of: compact, delete"),
        ("cleanup.policy", "", "Empty list"),
        ("message.timestamp.type", "createtime", "String must be one of"),
        ("min.cleanable.dirty.ratio", "1.5", "Value must be no more than 1"),
        ("min.cleanable.dirty.ratio", "nan", "Not a number of type DOUBLE"),
        ("preallocate", "yes", "true or false"),
        ("min.insync.replicas", "0", "Value must be at least 1"),
    ],
)
def test_bad_values_are_refused_with_kafka_wording(name: str, raw: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as exc:
        tc.parse_value(name, raw)
    assert message in str(exc.value)
    assert f"configuration {name}" in str(exc.value)


def test_unknown_and_null() -> None:
    with pytest.raises(InvalidConfig, match="Unknown topic config name: retention.hours"):
        tc.parse_value("retention.hours", "1")
    with pytest.raises(InvalidConfig, match="Null value"):
        tc.parse_value("retention.ms", None)


def test_normalize_canonical_forms() -> None:
    out = tc.normalize(
        {
            "cleanup.policy": " compact , delete,compact",
            "preallocate": "TRUE",
            "retention.ms": " 10 ",
        }
    )
    assert out == {"cleanup.policy": "compact,delete", "preallocate": "true", "retention.ms": "10"}


def test_override_wins_and_synonyms_listed() -> None:
    r = tc.resolve("retention.ms", {"retention.ms": "1000"}, {"log.retention.ms": "5000"})
    assert (r.value, r.source) == ("1000", ConfigSource.TOPIC_CONFIG)
    assert [(s.name, s.value, s.source) for s in r.synonyms] == [
        ("retention.ms", "1000", ConfigSource.TOPIC_CONFIG),
        ("log.retention.ms", "5000", ConfigSource.STATIC_BROKER_CONFIG),
        ("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG),
    ]


def test_broker_hours_and_minutes_convert() -> None:
    r = tc.resolve("retention.ms", {}, {"log.retention.hours": "2"})
    assert (r.typed, r.source) == (2 * 3_600_000, ConfigSource.STATIC_BROKER_CONFIG)
    # log.retention.minutes takes precedence over hours; ms over both
    r = tc.resolve("retention.ms", {}, {"log.retention.hours": "2", "log.retention.minutes": "3"})
    assert r.typed == 180_000
    r = tc.resolve("retention.ms", {}, {"log.retention.ms": "7", "log.retention.minutes": "3"})
    assert r.typed == 7
    assert tc.resolve("retention.ms", {}, {"log.retention.hours": "-1"}).typed == -1
    assert tc.resolve("segment.ms", {}, {"log.roll.hours": "1"}).typed == 3_600_000


def test_default_source_is_default_config() -> None:
    r = tc.resolve("segment.bytes", {})
    assert r.source is ConfigSource.DEFAULT_CONFIG and r.is_default
    assert [(s.name, s.source) for s in r.synonyms] == [
        ("log.segment.bytes", ConfigSource.DEFAULT_CONFIG)
    ]


def test_broker_config_object_with_explicit_mapping() -> None:
    class FakeBrokerConfig:  # the shape BrokerConfig exposes: explicitly set properties
        explicit = {"log.segment.bytes": 4096, "log.cleanup.policy": ["compact"]}

    eff = tc.effective({}, FakeBrokerConfig())
    assert eff["segment.bytes"] == 4096
    assert eff["cleanup.policy"] == ("compact",)


def test_bad_broker_value_is_reported() -> None:
    with pytest.raises(InvalidConfig, match="log.segment.bytes"):
        tc.resolve("segment.bytes", {}, {"log.segment.bytes": "huge"})


def test_log_kwargs_cover_storage_configs() -> None:
    kw = tc.log_kwargs({"retention.ms": "100", "cleanup.policy": "compact,delete"})
    assert kw["retention_ms"] == 100
    assert kw["cleanup_policy"] == "compact,delete"
    assert kw["segment_bytes"] == 1_073_741_824
    assert kw["min_cleanable_dirty_ratio"] == 0.5
    assert set(kw) == {d.log_kwarg for d in tc.TOPIC_CONFIGS.values() if d.log_kwarg}
    # configs enforced elsewhere never reach the Log
    assert "min_insync_replicas" not in kw
    only = tc.log_kwargs({}, accepted=lambda k: k == "segment_bytes")
    assert list(only) == ["segment_bytes"]


def test_incremental_set_delete_append_subtract() -> None:
    cur = {"retention.ms": "100"}
    new = tc.apply_incremental(cur, [("retention.ms", 1, None), ("segment.bytes", 0, "1024")])
    assert new == {"segment.bytes": "1024"}
    assert cur == {"retention.ms": "100"}  # input untouched
    new = tc.apply_incremental({}, [("cleanup.policy", 2, "compact")])
    assert new == {"cleanup.policy": "delete,compact"}
    new = tc.apply_incremental(new, [("cleanup.policy", 3, "delete")])
    assert new == {"cleanup.policy": "compact"}
    with pytest.raises(InvalidConfig, match="Empty list"):
        tc.apply_incremental(new, [("cleanup.policy", 3, "compact")])
    with pytest.raises(InvalidConfig, match="append is not allowed"):
        tc.apply_incremental({}, [("retention.ms", 2, "5")])
    with pytest.raises(InvalidConfig, match="Duplicate"):
        tc.apply_incremental({}, [("retention.ms", 0, "5"), ("retention.ms", 1, None)])
    with pytest.raises(ValueError, match="Unknown config operation"):
        tc.apply_incremental({}, [("retention.ms", 9, "5")])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "can't be empty"),
        (".", 'cannot be "." or ".."'),
        ("..", 'cannot be "." or ".."'),
        ("a" * 250, "can't be longer than 249"),
        ("bad name", "contains a character other than"),
        ("tôpic", "contains a character other than"),
    ],
)
def test_topic_name_rules(name: str, message: str) -> None:
    with pytest.raises(InvalidTopicName, match=message):
        tc.validate_topic_name(name)


def test_legal_topic_names() -> None:
    for name in ("a", "a" * 249, "my.topic_1-x", "__consumer_offsets", "..."):
        tc.validate_topic_name(name)
    assert tc.collision_key("a.b") == tc.collision_key("a_b")


def test_check_broker_config_refuses_unusable_log_settings() -> None:
    tc.check_broker_config({})
    tc.check_broker_config({"log.retention.hours": "1", "log.segment.bytes": "1024"})
    for bad, word in [
        ({"log.segment.bytes": "5"}, "at least 14"),
        ({"log.cleanup.policy": "banana"}, "cleanup.policy"),
        ({"log.retention.minutes": "soon"}, "log.retention.minutes"),
        ({"log.cleaner.min.cleanable.ratio": "3"}, "no more than 1"),
    ]:
        with pytest.raises(InvalidConfig, match=word):
            tc.check_broker_config(bad)


def test_broker_config_load_refuses_bad_log_settings() -> None:
    from broker.config import BrokerConfig, ConfigError

    with pytest.raises(ConfigError, match="log.segment.bytes"):
        BrokerConfig({"log.segment.bytes": "5"})
    assert BrokerConfig({"log.retention.ms": "1000"}).get("log.retention.ms") == 1000


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_names = st.sampled_from([*tc.TOPIC_CONFIGS, "bogus", ""])
_values = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True).map(str),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_names, _values, max_size=6))
def test_normalize_only_raises_invalid_config(configs: dict) -> None:
    try:
        out = tc.normalize(configs)
    except InvalidConfig:
        return
    # what is accepted round-trips and gives Log keyword arguments
    assert tc.normalize(out) == out
    tc.log_kwargs(out)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_names, st.integers(-1, 5), _values), max_size=5))
def test_incremental_only_raises_clear_errors(ops: list) -> None:
    try:
        out = tc.apply_incremental({"cleanup.policy": "delete"}, ops)
    except (InvalidConfig, ValueError):
        return
    assert tc.normalize(out) == out


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_topic_name_rules_never_crash(name: str) -> None:
    try:
        tc.validate_topic_name(name)
    except InvalidTopicName:
        return
    assert 0 < len(name) <= 249
