//! Per-partition log storage.
