"""The search engines behind the search service: one interface (`base`), tantivy and PostgreSQL."""
