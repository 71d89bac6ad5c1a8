"""The face corpus, one job a module: sources, splits, the crop cache, shards and the card (docs/data.md)."""
