//! groups (in progress)
