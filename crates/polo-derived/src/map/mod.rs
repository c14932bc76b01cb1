//! Map levels of detail: built by the map helper (see the issue).
