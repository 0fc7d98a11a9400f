//! Placeholder: the tokio adapter lands with its issue.
