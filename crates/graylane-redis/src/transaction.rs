//! Hand-written transactions (`MULTI` ... `EXEC` sent as single commands or inside a pipeline):
//! what the queued commands' replies need translating in `EXEC`'s reply, and the refusal that
//! must abort the transaction the way a queueing error aborts it in Redis.
//!
//! A transaction belongs to the lane that opened it on this connection handle: a command in
//! another lane cannot join it, and reads inside it do not read through (their replies arrive
//! with `EXEC`). Like redis-rs's own advice, a hand-written `MULTI` needs a connection of its
//! own: clones of a multiplexed connection share one server connection, and another clone's
//! command would land in the transaction (`.atomic()` pipelines have no such gap).

use graylane_core::Lane;
use redis::Value;

use crate::reply::fix_reply;
use crate::table::Reply;

/// An open transaction.
#[derive(Clone, Debug)]
pub(crate) struct Transaction {
    pub(crate) lane: Lane,
    /// The reply kind of each command queued so far, in order.
    queued: Vec<Reply>,
    /// A command was refused while it was open: Redis never saw it, so `EXEC` would run the
    /// others. Such a transaction is discarded instead.
    pub(crate) aborted: bool,
}

impl Transaction {
    pub(crate) fn new(lane: Lane) -> Transaction {
        Transaction {
            lane,
            queued: Vec::new(),
            aborted: false,
        }
    }

    pub(crate) fn queue(&mut self, reply: Reply) {
        self.queued.push(reply);
    }

    /// How `EXEC`'s reply is translated.
    pub(crate) fn into_fix(self) -> Fix {
        Fix::Exec(self.queued)
    }
}

/// How one reply is translated back.
#[derive(Clone, Debug)]
pub(crate) enum Fix {
    One(Reply),
    /// `EXEC`: an array, one reply per queued command.
    Exec(Vec<Reply>),
}

impl Fix {
    pub(crate) fn apply(&self, prefix: &[u8], v: Value) -> Value {
        match (self, v) {
            (Fix::One(kind), v) => fix_reply(prefix, *kind, v),
            // One reply per queued command; any other count means the server queued what the
            // handle did not see (a clone sharing the connection), and nothing is guessed.
            (Fix::Exec(kinds), Value::Array(items)) if items.len() == kinds.len() => Value::Array(
                items
                    .into_iter()
                    .zip(kinds)
                    .map(|(v, kind)| fix_reply(prefix, *kind, v))
                    .collect(),
            ),
            (Fix::Exec(_), other) => other,
        }
    }
}

/// Where a command moves the transaction state of its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Multi,
    Exec,
    Discard,
    Other,
}

impl Step {
    pub(crate) fn of(command: &str) -> Step {
        match command {
            "MULTI" => Step::Multi,
            "EXEC" => Step::Exec,
            "DISCARD" => Step::Discard,
            _ => Step::Other,
        }
    }
}
