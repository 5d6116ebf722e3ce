//! The arguments of a command as the wrapper reads them: in place when it can, unpacked when it
//! must.

use redis::{Arg, Cmd, ErrorKind, RedisError, RedisResult, Value};

/// The arguments of a command (name first), read in place; a command with a cursor argument
/// is unpacked once, since the cursor's value is only in the packed form.
pub(crate) enum Args<'c> {
    InPlace(&'c Cmd, usize),
    Unpacked(Vec<Vec<u8>>),
}

impl<'c> Args<'c> {
    pub(crate) fn of(cmd: &'c Cmd) -> RedisResult<Args<'c>> {
        if !cmd.in_scan_mode() {
            return Ok(Args::InPlace(cmd, cmd.args_iter().len()));
        }
        let unexpected = || RedisError::from((ErrorKind::Client, "unexpected packed command"));
        match redis::parse_redis_value(&cmd.get_packed_command())? {
            Value::Array(items) => Ok(Args::Unpacked(
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::BulkString(b) => Ok(b),
                        _ => Err(unexpected()),
                    })
                    .collect::<RedisResult<_>>()?,
            )),
            _ => Err(unexpected()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Args::InPlace(_, n) => *n,
            Args::Unpacked(v) => v.len(),
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        match self {
            Args::InPlace(cmd, _) => match cmd.args_iter().nth(i)? {
                Arg::Simple(b) => Some(b),
                _ => None,
            },
            Args::Unpacked(v) => v.get(i).map(Vec::as_slice),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let (in_place, unpacked) = match self {
            Args::InPlace(cmd, _) => (Some(cmd.args_iter()), None),
            Args::Unpacked(v) => (None, Some(v.iter().map(Vec::as_slice))),
        };
        in_place
            .into_iter()
            .flatten()
            .map(|a| match a {
                Arg::Simple(b) => b,
                _ => &[][..],
            })
            .chain(unpacked.into_iter().flatten())
    }
}
