"""Cost arithmetic: exact nano-dollars from the price table, and reservations."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gatepass.config import PriceConfig
from gatepass.limits.pricing import NANO_PER_USD, Price, PriceTable, counted_tokens, estimate
from gatepass.proxy.usage import Usage


def test_a_request_costs_each_kind_of_token_at_its_price() -> None:
    table = PriceTable()
    usage = Usage(
        input_tokens=1_000,
        output_tokens=2_000,
        cache_creation_input_tokens=10_000,
        cache_read_input_tokens=100_000,
    )
    # Opus 4.7: $5 in, $25 out, $6.25 cache write, $0.50 cache read per million tokens
    nano = table.price(["claude-opus-4-7"]).cost(usage)
    expected = Decimal("0.005") + Decimal("0.05") + Decimal("0.0625") + Decimal("0.05")
    assert nano == int(expected * NANO_PER_USD)


def test_costs_add_up_without_rounding() -> None:
    haiku = PriceTable().price(["claude-haiku-4-5"])
    one = haiku.cost(Usage(input_tokens=1, output_tokens=1, cache_read_input_tokens=1))
    assert one == 1_000 + 5_000 + 100  # nano-USD
    assert sum(one for _ in range(1_000_000)) == 1_000_000 * one


@pytest.mark.parametrize(
    ("model", "input_nano"),
    [
        ("claude-sonnet-4-6", 3_000),
        ("claude-sonnet-4-6-20260101", 3_000),  # dated id: longest prefix
        ("claude-haiku-4-5", 1_000),
        ("claude-3-5-haiku-20241022", 800),
        ("claude-opus-4-1-20250805", 15_000),
        ("claude-opus-4-20250514", 15_000),
        ("claude-opus-4-7", 5_000),
        ("vendor.claude-sonnet-9", 3_000),  # family fallback
        ("llama-70b", 15_000),  # unknown: the dearest price, never free
    ],
)
def test_models_are_priced_by_id_prefix_or_family(model: str, input_nano: int) -> None:
    assert PriceTable().price([model]).input == input_nano


def test_the_served_model_is_priced_before_the_public_alias() -> None:
    table = PriceTable()
    assert table.price(["claude-haiku-4-5", "claude-opus-4-7"]).input == 1_000
    assert table.price(["", "claude-haiku-4-5"]).input == 1_000


def test_configured_prices_override_defaults_and_unknown_models() -> None:
    table = PriceTable(
        {"claude-sonnet-4-6": PriceConfig(input=Decimal("2"), output=Decimal("10"))},
        default=PriceConfig(input=Decimal("0.001"), output=Decimal("0.002")),
    )
    sonnet = table.price(["claude-sonnet-4-6-20260101"])
    assert (sonnet.input, sonnet.output, sonnet.cache_write, sonnet.cache_read) == (
        2_000,
        10_000,
        2_500,
        200,
    )
    assert table.price(["claude-sonnet-4-5"]).input == 3_000
    assert table.price(["mystery"]).input == 1


def test_prices_finer_than_a_thousandth_of_a_dollar_are_refused() -> None:
    with pytest.raises(ValueError, match=r"0\.001"):
        PriceConfig(input=Decimal("0.0005"), output=Decimal("1"))
    with pytest.raises(ValueError, match="finer"):
        Price.per_million("0.0001", "1")


def test_token_limits_count_input_cache_writes_and_output_but_not_cache_reads() -> None:
    usage = Usage(
        input_tokens=10, output_tokens=20, cache_creation_input_tokens=5, cache_read_input_tokens=99
    )
    assert counted_tokens(usage) == 35


def test_a_reservation_covers_the_body_and_max_tokens() -> None:
    price = PriceTable().price(["claude-sonnet-4-6"])
    tokens, nano = estimate(price, body_bytes=401, max_tokens=1_000)
    assert tokens == 101 + 1_000
    assert nano == 101 * 3_000 + 1_000 * 15_000
