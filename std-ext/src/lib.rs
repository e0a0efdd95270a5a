//! Host-side evaluation on top of clifhe-core.
