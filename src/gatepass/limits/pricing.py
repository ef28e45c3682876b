"""What tokens cost: a price table per model and exact integer arithmetic in nano-dollars.

Prices are USD per million tokens, so one token at $P/MTok costs P x 1000 nano-USD; with
prices in steps of $0.001 every cost is a whole number of nano-USD, added up without rounding.
A model is priced by its exact id, else by the longest configured prefix of it (dated ids such
as `claude-sonnet-4-6-20260101`), else by its family (`opus`, `sonnet`, `haiku`), else by
`default_price`, else at the dearest family's price: an unknown model is never free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from gatepass.config import PriceConfig
from gatepass.proxy.usage import Usage

NANO_PER_USD = 10**9
NANO_PER_CENT = 10**7
CHARS_PER_TOKEN = 4  # rough size of a token in a request body, for reservations only

# USD per million tokens: input, output, cache write (5 min), cache read.
DEFAULT_PRICES: dict[str, tuple[str, str, str, str]] = {
    "claude-opus-4-7": ("5", "25", "6.25", "0.50"),
    "claude-opus-4-6": ("5", "25", "6.25", "0.50"),
    "claude-opus-4-5": ("5", "25", "6.25", "0.50"),
    "claude-opus-4-1": ("15", "75", "18.75", "1.50"),
    "claude-opus-4-0": ("15", "75", "18.75", "1.50"),
    "claude-opus-4-2025": ("15", "75", "18.75", "1.50"),  # claude-opus-4-20250514
    "claude-3-opus": ("15", "75", "18.75", "1.50"),
    "claude-sonnet-4": ("3", "15", "3.75", "0.30"),
    "claude-3-7-sonnet": ("3", "15", "3.75", "0.30"),
    "claude-3-5-sonnet": ("3", "15", "3.75", "0.30"),
    "claude-haiku-4-5": ("1", "5", "1.25", "0.10"),
    "claude-3-5-haiku": ("0.80", "4", "1", "0.08"),
    "claude-3-haiku": ("0.25", "1.25", "0.30", "0.03"),
}
FAMILY_PRICES = {
    "opus": "claude-opus-4-7",
    "sonnet": "claude-sonnet-4",
    "haiku": "claude-haiku-4-5",
}
DEAREST = "claude-opus-4-1"


@dataclass(frozen=True, slots=True)
class Price:
    """Nano-USD per token."""

    input: int
    output: int
    cache_write: int
    cache_read: int

    @classmethod
    def per_million(
        cls,
        input: Decimal | str,
        output: Decimal | str,
        cache_write: Decimal | str | None = None,
        cache_read: Decimal | str | None = None,
    ) -> Price:
        """From USD per million tokens; cache prices default to 1.25x and 0.1x input."""
        inp, out = Decimal(input), Decimal(output)
        thousandth = Decimal("0.001")  # derived prices are rounded to what a price can be
        write = (
            Decimal(cache_write)
            if cache_write is not None
            else (inp * Decimal("1.25")).quantize(thousandth)
        )
        read = Decimal(cache_read) if cache_read is not None else (inp / 10).quantize(thousandth)
        return cls(*(_nano_per_token(v) for v in (inp, out, write, read)))

    @classmethod
    def from_config(cls, config: PriceConfig) -> Price:
        return cls.per_million(config.input, config.output, config.cache_write, config.cache_read)

    def cost(self, usage: Usage) -> int:
        """What `usage` cost, in nano-USD (exact)."""
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_creation_input_tokens * self.cache_write
            + usage.cache_read_input_tokens * self.cache_read
        )


def _nano_per_token(per_million: Decimal) -> int:
    nano = per_million * 1000
    if nano != nano.to_integral_value():
        raise ValueError(f"price {per_million} is finer than $0.001 per million tokens")
    return int(nano)


def counted_tokens(usage: Usage) -> int:
    """Tokens that count against token budgets and tpm: input, cache writes and output.

    Cache reads are left out, as in Anthropic's own input-token rate limits; they are
    still charged in USD.
    """
    return usage.input_tokens + usage.cache_creation_input_tokens + usage.output_tokens


class PriceTable:
    def __init__(
        self,
        overrides: Mapping[str, PriceConfig] | None = None,
        default: PriceConfig | None = None,
    ) -> None:
        self._prices = {name: Price.per_million(*row) for name, row in DEFAULT_PRICES.items()}
        for name, config in (overrides or {}).items():
            self._prices[name] = Price.from_config(config)
        self._by_length = sorted(self._prices, key=len, reverse=True)
        self._default = Price.from_config(default) if default is not None else self._prices[DEAREST]

    def price(self, model_ids: Iterable[str]) -> Price:
        """The price of the first id that matches (served id first, then public id)."""
        ids = [m for m in model_ids if m]
        for model in ids:
            if model in self._prices:
                return self._prices[model]
        for model in ids:
            for name in self._by_length:
                if model.startswith(name):
                    return self._prices[name]
        for model in ids:
            for family, name in FAMILY_PRICES.items():
                if family in model:
                    return self._prices[name]
        return self._default


def estimate(price: Price, body_bytes: int, max_tokens: int) -> tuple[int, int]:
    """A request's reservation before it runs: `(tokens, nano-USD)`.

    Input is guessed from the body size (about four bytes a token) and output is what
    `max_tokens` allows; settlement replaces both with what the upstream reported.
    """
    input_tokens = -(-body_bytes // CHARS_PER_TOKEN)
    output = max(max_tokens, 0)
    return input_tokens + output, input_tokens * price.input + output * price.output
