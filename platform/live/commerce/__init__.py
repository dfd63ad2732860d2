"""Monetization: a double-entry ledger, bits, subscriptions, ad breaks and a payment provider."""
