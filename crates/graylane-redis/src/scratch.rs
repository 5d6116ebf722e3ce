//! A per-thread pool of command buffers, for the rewritten commands of [`LaneRedis`].
//!
//! A handle rewrites every lane command into a buffer of its own, reused across its commands.
//! Applications clone the handle per request, though, and a fresh buffer per clone cost two
//! allocations, measured at ~1% of a real round trip. So a handle takes its buffer from this
//! pool on its first lane command and gives it back on drop; base traffic never takes one.
//!
//! [`LaneRedis`]: crate::LaneRedis

use std::cell::RefCell;

use redis::Cmd;

/// Enough for every handle a worker thread has in flight at once, in practice; beyond it
/// buffers are freed.
const KEEP: usize = 64;

thread_local! {
    // Boxed: a command is ~100 bytes, moved in and out of the pool on every request.
    #[allow(clippy::vec_box)]
    static POOL: RefCell<Vec<Box<Cmd>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer from the pool, or a new one when the pool is empty.
pub(crate) fn take() -> Box<Cmd> {
    POOL.try_with(|p| p.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| Box::new(Cmd::with_capacity(8, 256)))
}

/// Returns `cmd` to the pool (freed when the pool is full).
pub(crate) fn give_back(cmd: Box<Cmd>) {
    // During thread teardown the pool may be gone: the buffer is just freed.
    let _ = POOL.try_with(|p| {
        let mut pool = p.borrow_mut();
        if pool.len() < KEEP {
            pool.push(cmd);
        }
    });
}
