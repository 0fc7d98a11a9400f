//! [`LazyDeque`]: a `VecDeque` behind a box made on first use, for queues that are empty in
//! the common case and would otherwise make every connection 24 bytes larger.

use std::collections::VecDeque;

/// A `VecDeque<T>` that takes one pointer until something is pushed. Cleared, it keeps its
/// memory (as a `VecDeque` does).
#[derive(Debug)]
// The box is the point: `Option<Box<_>>` is one pointer, a `VecDeque` four.
#[allow(clippy::box_collection)]
pub(crate) struct LazyDeque<T>(Option<Box<VecDeque<T>>>);

impl<T> Default for LazyDeque<T> {
    fn default() -> Self {
        LazyDeque(None)
    }
}

impl<T> LazyDeque<T> {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|d| d.is_empty())
    }

    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        self.0.as_ref()?.get(index)
    }

    pub(crate) fn front(&self) -> Option<&T> {
        self.0.as_ref()?.front()
    }

    #[inline]
    pub(crate) fn front_mut(&mut self) -> Option<&mut T> {
        self.0.as_mut()?.front_mut()
    }

    pub(crate) fn pop_front(&mut self) -> Option<T> {
        self.0.as_mut()?.pop_front()
    }

    /// The deque, unless nothing was ever pushed.
    #[inline]
    pub(crate) fn as_deque(&self) -> Option<&VecDeque<T>> {
        self.0.as_deref()
    }

    /// The deque itself, made if it was not yet.
    pub(crate) fn make(&mut self) -> &mut VecDeque<T> {
        self.0.get_or_insert_default()
    }

    #[inline]
    pub(crate) fn clear(&mut self) {
        if let Some(d) = &mut self.0 {
            d.clear();
        }
    }

    /// Slots reserved (0 before the first push).
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.0.as_ref().map_or(0, |d| d.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_one_pointer_and_behaves_as_a_deque() {
        assert_eq!(size_of::<LazyDeque<u64>>(), size_of::<usize>());
        let mut q = LazyDeque::default();
        assert!(q.is_empty() && q.front().is_none() && q.pop_front().is_none());
        assert_eq!(q.capacity(), 0);
        q.make().push_back(1);
        q.make().push_back(2);
        assert_eq!(
            (q.get(1), q.as_deque().map(VecDeque::len)),
            (Some(&2), Some(2))
        );
        *q.front_mut().unwrap() = 5;
        assert_eq!(q.pop_front(), Some(5));
        q.clear();
        assert!(q.is_empty() && q.capacity() > 0);
    }
}
