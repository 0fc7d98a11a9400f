//! admission (in progress)
