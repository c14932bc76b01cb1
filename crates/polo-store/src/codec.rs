//! Point-chunk codec (being written).
