//! [`Watcher`]: follows a spec file and applies each new content to a [`LiveSpec`].
//!
//! It polls: each period it reads the file (through symlinks) and compares the text with the
//! last it saw. That sees a plain edit, an editor's write-and-rename, and a Kubernetes
//! ConfigMap mount, where the kubelet writes the new files into a fresh directory and swaps
//! the `..data` symlink to it in one rename; it needs no notification API and no thread per
//! file beyond its own, and costs one small read per period.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{LiveSpec, ReloadError};
use crate::spec::LaneSpec;
use crate::spec::load::read_bounded;

/// Applies every new content of a spec file to a [`LiveSpec`], until dropped or
/// [stopped](Self::stop). Made by [`LiveSpec::watch`].
#[derive(Debug)]
pub struct Watcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LiveSpec {
    /// Loads the spec at `path` as revision 1.
    pub fn from_path(path: impl AsRef<Path>) -> Result<LiveSpec, crate::spec::SpecError> {
        LiveSpec::new(LaneSpec::from_path(path)?)
    }

    /// Follows the file at `path`, checking it every `period` (a second suits a ConfigMap,
    /// which the kubelet refreshes in about a minute): each new content that loads is applied
    /// as the next revision, once two reads a period apart have found it (so within two
    /// periods; a write in place that takes less than a period is not applied half-written —
    /// write by rename, as editors and the kubelet do, to be safe from slower writers). A content that is invalid or needs a restart keeps the spec in
    /// force; it is logged once (`tracing`, warn: the located error, or what needs the
    /// restart), and counted in [`stats`](LiveSpec::stats). A file that cannot be read (gone
    /// for a moment while an editor saves it) is logged once and tried again.
    ///
    /// Its first read compares the file with the spec in force, so a change made between
    /// loading and watching is not missed.
    pub fn watch(&self, path: impl Into<PathBuf>, period: Duration) -> Watcher {
        let path = path.into();
        let live = self.clone();
        let (stop, stopped) = mpsc::channel();
        let mut seen: Option<String> = None;
        let thread = std::thread::Builder::new()
            .name("graylane-spec-watch".into())
            .spawn(move || {
                // Failing to read is remembered apart from contents, so it is logged once.
                let mut unreadable = false;
                let mut pending: Option<String> = None;
                loop {
                    match stopped.recv_timeout(period) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let text = match read_bounded(&path) {
                        Ok(text) => text,
                        Err(e) => {
                            if !unreadable {
                                unreadable = true;
                                tracing::warn!(path = %path.display(), "graylane lane spec: {e}");
                            }
                            continue;
                        }
                    };
                    unreadable = false;
                    if seen.as_deref() == Some(text.as_str()) {
                        pending = None;
                        continue;
                    }
                    // A new content is applied once two reads in a row agree: an edit written
                    // in place is read half-written now and then.
                    if pending.as_deref() != Some(text.as_str()) {
                        pending = Some(text);
                        continue;
                    }
                    pending = None;
                    let before = live.current().number();
                    let outcome = LaneSpec::from_file_text(&path, &text)
                        .map_err(ReloadError::Invalid)
                        .inspect_err(|_| live.count_invalid())
                        .and_then(|spec| live.apply(spec));
                    match outcome {
                        Ok(revision) if revision == before => {}
                        Ok(revision) => tracing::info!(
                            path = %path.display(),
                            revision,
                            "graylane lane spec: revision {revision} in force"
                        ),
                        Err(e) => tracing::warn!(path = %path.display(), "graylane lane spec: {e}"),
                    }
                    seen = Some(text);
                }
            })
            .expect("spawn the spec watcher thread");
        Watcher {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Watcher {
    /// Stops watching, and waits until the watcher has (it finishes applying a change it has
    /// started).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}
