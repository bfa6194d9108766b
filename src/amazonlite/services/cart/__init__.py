"""The cart: guest and customer carts, coupons, and the totals a customer sees."""
