//! Streaming JSON element splitter (placeholder).
