//! Process CPU time, the measure that stays put on a small shared machine: wall-clock
//! throughput moves with whatever else is scheduled, the CPU a run burns much less.

use std::time::Duration;

/// CPU time (user + system) this process has used so far, every thread counted, including
/// threads that have already ended (librdkafka's, say, after a client is dropped).
#[allow(unsafe_code)]
pub(crate) fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` fills the `rusage` it is pointed at, which is valid, writable and
    // (zeroed) initialised memory; `RUSAGE_SELF` is always a valid target.
    let usage = unsafe {
        let rc = libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) cannot fail");
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_work_done() {
        let before = process_cpu();
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(process_cpu() - before >= Duration::from_millis(20));
    }
}
