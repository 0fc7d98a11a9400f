//! Placeholder: the blocking adapter lands with its issue.
