"""What each provider accepts and what it costs.

The request builder's field rules (api-reference §2) live here as one table per provider; the
form, the live validation, the preview and the help texts all read them.
"""

from decimal import Decimal

# api-reference §6: a queued task is charged a $0.01 prepayment plus a small base fee at post; the
# unused part of the prepayment is refunded when it finishes. A live task costs base + money_spent.
QUEUED_PREPAYMENT = Decimal("0.01")
QUEUED_BASE_FEE = Decimal("0.0002")
LIVE_BASE_FEE = Decimal("0.0006")


def queued_charge_per_task(*, price_multiplier: Decimal = Decimal("1")) -> Decimal:
    """What one task_post task is charged up front, before its real cost is known."""
    return (QUEUED_PREPAYMENT + QUEUED_BASE_FEE) * price_multiplier
