//! Streaming exporters (placeholder).
