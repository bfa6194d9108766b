"""Inventory: stock per SKU per warehouse, reservations with expiry, restock thresholds."""
