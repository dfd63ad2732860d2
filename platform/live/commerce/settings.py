"""Every price, share and limit of monetization, in one place.

Money is integer minor units of an explicit ISO 4217 currency (cents for USD); shares are
basis points (1/100 of a percent) so that no float ever touches an amount. The defaults are
what `live serve` runs with; tests build their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from live.api.ratelimit import Rate

#: ISO 4217 minor-unit exponents of the currencies an amount may name. BIT is the platform's own
#: virtual currency (one bit = one unit, no fraction).
CURRENCY_EXPONENTS: dict[str, int] = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "BIT": 0}

BITS = "BIT"

#: Largest amount of any single money-moving request, in minor units (a sanity cap, not a limit
#: on a balance): ten million dollars, far above any real purchase, well inside 2**53.
MAX_AMOUNT = 1_000_000_000


@dataclass(frozen=True, slots=True)
class BitPack:
    """A pack of bits sold for ``price`` minor units of the settlement currency."""

    bits: int
    price: int


@dataclass(frozen=True, slots=True)
class Tier:
    """A subscription tier: monthly price and the channel's share in basis points."""

    number: int
    price: int
    channel_share_bp: int


@dataclass(frozen=True, slots=True)
class CommerceSettings:
    #: The one currency the platform charges and settles in; others are refused as unsupported.
    currency: str = "USD"
    #: Bit packs by size (bits -> price). Twitch-like pricing: the markup over the bits' face
    #: value is platform revenue on purchase.
    bit_packs: tuple[BitPack, ...] = (
        BitPack(100, 140),
        BitPack(500, 700),
        BitPack(1500, 1995),
        BitPack(5000, 6440),
    )
    #: Face value of one bit in minor units of ``currency``: what a cheered bit is worth.
    bit_value: int = 1
    #: Share of a cheered bit's face value that goes to the channel, in basis points.
    bits_channel_share_bp: int = 10_000
    #: Most bits one cheer may carry.
    max_cheer_bits: int = 100_000
    #: Cheers per account. A cheer shows in chat without passing chat's own limit (Twitch's
    #: 20 messages / 30 s, docs/chat-protocol.md), so it gets the same budget here; past it 429.
    cheer_rate: Rate = field(default_factory=lambda: Rate(20, 20 / 30))
    #: Accounts whose cheer budget is remembered (least recently seen forgotten past this).
    cheer_rate_max_accounts: int = 100_000
    #: Subscription tiers, monthly, and their revenue split (the one place it is configured).
    tiers: tuple[Tier, ...] = (
        Tier(1, 499, 5_000),
        Tier(2, 999, 6_000),
        Tier(3, 2499, 7_000),
    )
    subscription_period_s: float = 30 * 24 * 3600.0
    #: Ads: revenue per thousand impressions (minor units) and the channel's share of it.
    ad_cpm: int = 500
    ads_channel_share_bp: int = 5_500
    ad_break_min_s: int = 30
    ad_break_max_s: int = 180
    #: A channel may start one ad break per this many seconds (after the last one ended).
    ad_break_cooldown_s: float = 480.0
    #: Idempotency keys are remembered at least this long (Stripe keeps them 24 h).
    idempotency_ttl_s: float = 48 * 3600.0
    idempotency_key_max_chars: int = 255
    #: A request holding a key but never answering (a crash) frees it after this long.
    idempotency_lock_s: float = 60.0
    #: Webhook signatures older or newer than this are refused (replay protection).
    webhook_tolerance_s: float = 300.0
    #: Ad creatives (URIs of HLS VOD playlists) the asset list offers non-subscribers.
    ad_creatives: tuple[tuple[str, float], ...] = field(default_factory=tuple)

    def tier(self, number: int) -> Tier | None:
        for tier in self.tiers:
            if tier.number == number:
                return tier
        return None

    def pack(self, bits: int) -> BitPack | None:
        for pack in self.bit_packs:
            if pack.bits == bits:
                return pack
        return None


@dataclass(frozen=True, slots=True)
class PaymentsSettings:
    """`live serve`'s provider: None for the embedded sandbox (signing with a fresh random secret),
    else the provider's API base URL, its key and the secret its webhooks are signed with."""

    provider_url: str | None = None
    api_key: str = "sk_test_livetwin"
    webhook_secret: str | None = None
    commerce: CommerceSettings = field(default_factory=CommerceSettings)


def share(amount: int, basis_points: int) -> int:
    """``amount * bp / 10000`` rounded down: the party named gets the floor, the other the rest."""
    return amount * basis_points // 10_000
