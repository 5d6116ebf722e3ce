//! Every interval and bound the consumers use, in one place: the public [`Timing`] a user
//! tunes, and the fixed bounds on calls to the broker.

use std::time::Duration;

/// How fast lane consumers are found live or dead, and how often progress is committed.
///
/// The defaults switch a gracefully stopped lane back to base within a tick (50 ms) plus a
/// control-topic round trip, and a crashed one within `lease + grace` (2.5 s).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Timing {
    /// How often a lane consumer writes its heartbeat.
    pub heartbeat: Duration,
    /// How long a heartbeat keeps a lane consumer live. The consumer itself stops processing
    /// when a lease has passed since it *sent* its last acknowledged heartbeat.
    pub lease: Duration,
    /// Extra time base waits, after a lease, before taking over from a silent lane consumer.
    pub grace: Duration,
    /// How often consumers check liveness and ownership.
    pub tick: Duration,
    /// How often progress is committed. A crashed lane consumer's messages processed since
    /// its last commit are processed again by base: this is the at-least-once window.
    pub commit: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            heartbeat: Duration::from_millis(250),
            lease: Duration::from_secs(2),
            grace: Duration::from_millis(500),
            tick: Duration::from_millis(50),
            commit: Duration::from_millis(100),
        }
    }
}

impl Timing {
    /// With another heartbeat interval and lease.
    #[must_use]
    pub fn lease(mut self, heartbeat: Duration, lease: Duration) -> Timing {
        self.heartbeat = heartbeat;
        self.lease = lease;
        self
    }

    /// With another grace period.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Timing {
        self.grace = grace;
        self
    }

    /// With another commit interval.
    #[must_use]
    pub fn commit(mut self, commit: Duration) -> Timing {
        self.commit = commit;
        self
    }
}

/// Silent this many leases (plus grace), a lane instance is forgotten: base tombstones its
/// records so that compaction drops them. Long after base has taken its partitions back.
pub(crate) const FORGET_AFTER: u32 = 10;

/// Reading the control topic up to its end (its high watermark) before acting on it.
pub(crate) const CATCH_UP: Duration = Duration::from_secs(10);
/// How often a catch-up looks whether the control reader has got there.
pub(crate) const CATCH_UP_POLL: Duration = Duration::from_millis(2);
/// A control record's send: waiting in the producer's queue, and (as `message.timeout.ms`) being
/// delivered; a consumer writing one handles nothing meanwhile.
pub(crate) const CONTROL_SEND: Duration = Duration::from_secs(10);
/// One request to the broker about the control topic: its metadata, its high watermark.
pub(crate) const CONTROL_CALL: Duration = Duration::from_secs(10);
/// DescribeConfigs of the control topic at start-up: a broker answers within milliseconds; one
/// that does not (librdkafka's mock) is not asked again by the process.
pub(crate) const DESCRIBE_CALL: Duration = Duration::from_secs(2);
/// One request to the broker on a consumer's behalf: a seek, a watermark or committed-offset
/// fetch.
pub(crate) const BROKER_CALL: Duration = Duration::from_secs(5);
/// How long a graceful stop keeps retrying its final commit through a rebalance.
pub(crate) const FINAL_COMMIT: Duration = Duration::from_secs(10);
/// Between two tries of the final commit, the consumer polls (taking part in the rebalance
/// that rejected it) this long.
pub(crate) const FINAL_COMMIT_POLL: Duration = Duration::from_millis(100);
/// After an error from the message stream before polling again; librdkafka retries
/// transient errors itself.
pub(crate) const ERROR_BACKOFF: Duration = Duration::from_millis(10);
/// After an error from the control topic's reader before reading again.
pub(crate) const CONTROL_READ_BACKOFF: Duration = Duration::from_millis(20);
/// The first pause before retrying a failed call a record waits on (a seek, a control-topic
/// read); it doubles up to [`RETRY_MAX`].
pub(crate) const RETRY_FIRST: Duration = Duration::from_millis(20);
/// The longest pause between two retries.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(1);
/// How often a failure that goes on is logged again.
pub(crate) const RETRY_LOG_EVERY: Duration = Duration::from_secs(10);
