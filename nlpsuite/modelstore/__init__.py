"""The model store: the catalog, resolving a name to a loadable model, the cache, fetching and integrity."""
