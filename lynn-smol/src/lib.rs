//! Placeholder: the smol adapter lands with its issue.
