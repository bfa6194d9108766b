"""Payments: one payment per order with the order's provider (`providers/`: the sandbox and Razorpay
behind one interface), confirmed by verified webhooks or a verified client callback, voided or
refunded for a cancelled order; the saga's `payment.*` facts (ARCHITECTURE.md §5)."""
