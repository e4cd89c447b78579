//! Locking that carries on after a panic elsewhere.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, carrying on after a panic elsewhere: the invariants the chat's mutexes guard
/// hold between statements, and refusing every later connection would be worse.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
