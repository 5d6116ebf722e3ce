//! The one error the wrapper adds: a command refused in a lane (fail closed), as a client error.

use graylane_core::Lane;
use redis::{ErrorKind, RedisError};

/// The error for `name` refused in `lane`, because of `why`.
pub(crate) fn refuse(name: &str, lane: Lane, why: &str) -> RedisError {
    RedisError::from((
        ErrorKind::Client,
        "graylane refused the command in a lane",
        format!("{name} in lane {lane}: {why}; it would not stay in the lane's namespace"),
    ))
}
