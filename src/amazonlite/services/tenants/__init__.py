"""Tenants: the registry of tenants and their settings (currency, tax, rate limits, feature flags)."""
