//! The last minutes of totals, one per poll: rates are the growth over a window divided by
//! its length; the chart is the rate between each pair of polls.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::model::Totals;

/// Totals as polled, oldest first, no older than `keep`.
#[derive(Debug)]
pub struct History {
    keep: Duration,
    polls: VecDeque<(Instant, Totals)>,
}

impl History {
    /// A history of the last `keep`.
    pub fn new(keep: Duration) -> History {
        History {
            keep,
            polls: VecDeque::new(),
        }
    }

    /// Adds a poll taken at `at`, dropping those older than `keep` (one older is kept, so a
    /// window as long as `keep` has a start).
    pub fn push(&mut self, at: Instant, totals: Totals) {
        self.polls.push_back((at, totals));
        while self.polls.len() > 2
            && self
                .polls
                .get(1)
                .is_some_and(|(t, _)| at.duration_since(*t) > self.keep)
        {
            self.polls.pop_front();
        }
    }

    /// The latest totals.
    pub fn latest(&self) -> Option<&Totals> {
        self.polls.back().map(|(_, t)| t)
    }

    /// What grew over the last `window` (or since the oldest poll, if younger), and how long
    /// that was; `None` before the second poll.
    pub fn growth(&self, window: Duration) -> Option<(Totals, Duration)> {
        let (now, latest) = self.polls.back()?;
        let (then, before) = self
            .polls
            .iter()
            .rev()
            .skip(1)
            .find(|(t, _)| now.duration_since(*t) >= window)
            .or_else(|| self.polls.front().filter(|(t, _)| t < now))?;
        Some((latest.since(before), now.duration_since(*then)))
    }

    /// Each pair of consecutive polls: seconds before the latest poll, and the growth.
    pub fn steps(&self) -> impl Iterator<Item = (f64, Totals, Duration)> + '_ {
        let now = self.polls.back().map(|(t, _)| *t);
        self.polls
            .iter()
            .zip(self.polls.iter().skip(1))
            .map(move |((t0, a), (t1, b))| {
                let ago = now.map_or(0.0, |n| n.duration_since(*t1).as_secs_f64());
                (-ago, b.since(a), t1.duration_since(*t0))
            })
    }
}
