"""The search service: a read model of the catalog, searched with relevance, typos, filters and facets."""
