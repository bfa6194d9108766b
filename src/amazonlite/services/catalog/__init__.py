"""catalog: products and their variants (SKUs), categories, brands, attributes and media."""
