"""The schema converter's value helpers (translator/schema.py): linear walks with the list scans' results."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from translator.schema import _unique


def list_scan_unique(values) -> list:
    """What _unique did before (quadratic): the reference for its semantics."""
    out: list = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from([0.0, 1.0, 2.5])
                           | st.sampled_from(["", "a", "1"]),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner,
                                                                                        max_size=2), max_leaves=6)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(json_values, max_size=12))
def test_unique_keeps_the_list_scan_semantics(values: list) -> None:
    assert _unique(values) == list_scan_unique(values)
    assert [type(v) for v in _unique(values)] == [type(v) for v in list_scan_unique(values)]


def test_unique_treats_equal_numbers_as_one() -> None:
    assert _unique([1, True, 1.0, "1", [1], [True], {"a": 1}, {"a": 1.0}, (1,)]) == [1, "1", [1], {"a": 1}, (1,)]
