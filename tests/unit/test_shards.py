"""Shards: a stable split of entries, independent of order, covering each entry once."""

from __future__ import annotations

import pytest

from imgmirror.syncing.shards import Shard, ShardError


def test_every_key_in_exactly_one_shard_and_split_is_balanced():
    keys = [f"reg.io/repo{i}|{i}|dst|False" for i in range(300)]
    for count in (1, 2, 3, 7):
        owners = [[s for s in range(count) if Shard(s, count).owns(k)] for k in keys]
        assert all(len(o) == 1 for o in owners)
        sizes = [sum(1 for o in owners if o == [s]) for s in range(count)]
        assert min(sizes) > 300 / count / 2


def test_stable_value():  # the split must never change between versions or machines
    assert [Shard(i, 3).owns("registry.k8s.io/pause|3.9|reg.corp/m|False") for i in range(3)] == [
        Shard(i, 3).owns("registry.k8s.io/pause|3.9|reg.corp/m|False") for i in range(3)
    ]
    assert Shard(0, 1).owns("anything")


def test_parse_and_environment():
    assert Shard.parse("2/5") == Shard(2, 5)
    assert str(Shard.parse(" 0/1 ")) == "0/1"
    assert Shard.from_environment(4, {"JOB_COMPLETION_INDEX": "3"}) == Shard(3, 4)
    with pytest.raises(ShardError, match="JOB_COMPLETION_INDEX"):
        Shard.from_environment(4, {})
    with pytest.raises(ShardError, match="0 to 3"):
        Shard.from_environment(4, {"JOB_COMPLETION_INDEX": "4"})


@pytest.mark.parametrize("text", ["1", "3/3", "-1/3", "a/b", "1/0", "1/2/3", ""])
def test_bad_shards(text):
    with pytest.raises(ShardError):
        Shard.parse(text)
