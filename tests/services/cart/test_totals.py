from __future__ import annotations

import pytest

from amazonlite.services.cart.coupons import allocate, compute_totals, discount_of, round_half_even


class TestRoundHalfEven:
    @pytest.mark.parametrize(("numerator", "denominator", "expected"), [
        (5, 10, 0), (15, 10, 2), (25, 10, 2), (35, 10, 4),  # x.5 goes to the even neighbour
        (14, 10, 1), (16, 10, 2), (0, 7, 0), (10, 10, 1),
    ])
    def test_halves_go_to_even(self, numerator: int, denominator: int, expected: int) -> None:
        assert round_half_even(numerator, denominator) == expected

    def test_is_exact_for_amounts_floats_cannot_hold(self) -> None:
        # 2**60 + 0.5: a float would have lost the half long before rounding.
        assert round_half_even(2 * 2**60 + 1, 2) == 2**60
        assert round_half_even(2 * (2**60 + 1) + 1, 2) == 2**60 + 2


class TestAllocate:
    def test_parts_sum_to_the_amount_and_the_largest_remainders_take_the_units(self) -> None:
        assert allocate(100, [333, 667]) == [33, 67]
        assert allocate(10, [1, 1, 1]) == [4, 3, 3]  # equal remainders: the earlier line first
        assert allocate(1, [100, 300]) == [0, 1]
        assert allocate(7, [0, 5]) == [0, 7]
        assert allocate(0, [1, 2]) == [0, 0]
        assert allocate(5, []) == []

    @pytest.mark.parametrize("amount", [0, 1, 7, 99, 1000, 12_345])
    def test_always_sums_exactly(self, amount: int) -> None:
        weights = [1999, 3, 450, 77_777, 1]
        parts = allocate(min(amount, sum(weights)), weights)
        assert sum(parts) == min(amount, sum(weights))
        assert all(p >= 0 for p in parts)


class TestTotals:
    def test_no_discount_no_tax(self) -> None:
        totals = compute_totals([1000, 250], 0, 0)
        assert (totals.subtotal, totals.discount, totals.tax, totals.total) == (1250, 0, 0, 1250)

    def test_tax_is_rounded_per_line_half_to_even(self) -> None:
        # 10% of 25 is 2.5 -> 2; of 35 is 3.5 -> 4; of 15 is 1.5 -> 2: 8 in all (not round(7.5) of the sum).
        totals = compute_totals([25, 35, 15], 0, 1000)
        assert totals.line_taxes == (2, 4, 2) and totals.tax == 8 and totals.total == 83

    def test_the_discount_is_allocated_before_tax(self) -> None:
        totals = compute_totals([333, 667], 100, 1800)
        assert totals.line_discounts == (33, 67)
        assert totals.line_taxes == (54, 108)
        assert (totals.subtotal, totals.discount, totals.tax, totals.total) == (1000, 100, 162, 1062)

    def test_a_discount_that_does_not_divide_evenly(self) -> None:
        totals = compute_totals([100, 100, 100], 100, 2000)
        assert totals.line_discounts == (34, 33, 33)
        # (66 * 0.2 = 13.2 -> 13), (67 * 0.2 = 13.4 -> 13) twice.
        assert totals.line_taxes == (13, 13, 13) and totals.total == 200 + 39

    def test_zero_and_full_tax(self) -> None:
        assert compute_totals([999], 0, 0).tax == 0
        full = compute_totals([999, 1], 500, 10_000)
        assert full.tax == 500 and full.total == 1000

    def test_a_discount_never_exceeds_the_subtotal(self) -> None:
        totals = compute_totals([300, 200], 10_000, 1800)
        assert (totals.discount, totals.tax, totals.total) == (500, 0, 0)

    def test_an_empty_cart(self) -> None:
        totals = compute_totals([], 100, 1800)
        assert (totals.subtotal, totals.discount, totals.tax, totals.total) == (0, 0, 0, 0)


class TestDiscount:
    def test_percent_rounds_half_to_even(self) -> None:
        assert discount_of("percent", 10, 1005) == 100  # 100.5 -> 100
        assert discount_of("percent", 10, 1015) == 102  # 101.5 -> 102
        assert discount_of("percent", 100, 1234) == 1234
        assert discount_of("percent", 1, 49) == 0  # 0.49 -> 0

    def test_fixed_never_exceeds_the_subtotal(self) -> None:
        assert discount_of("fixed", 500, 10_000) == 500
        assert discount_of("fixed", 500, 300) == 300
        assert discount_of("fixed", 500, 0) == 0
