//! Group commit of stored objects: each object's file is fsynced and renamed
//! by the thread that stored it (several at once), then one thread makes the
//! renames durable (one fsync of the storage directory) and records every
//! object that is waiting in the manifest (one write, one fsync) for all of
//! them. Objects stored at about the same time, on one association with an
//! asynchronous window or on many associations, thus share two of their three
//! fsyncs; an object alone costs what it did. Nobody is answered before the
//! commit that covers their object is done.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use crate::integrity::{Manifest, ManifestEntry};

/// Commits for one storage directory, shared by all associations.
#[derive(Debug)]
pub(super) struct Committer {
    dir: PathBuf,
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Entries waiting for a commit, in ticket order.
    queue: Vec<(u64, ManifestEntry)>,
    next_ticket: u64,
    /// Every ticket below this has been committed (or failed).
    done_below: u64,
    /// A thread is committing now.
    busy: bool,
    /// Tickets whose commit failed, and why.
    failed: HashMap<u64, String>,
}

impl Committer {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        }
    }

    /// Makes the rename of `entry`'s file durable and appends `entry` to the
    /// manifest; returns once both are on disk. The caller has fsynced and
    /// renamed the file already. The first caller to find nobody committing
    /// commits everything queued; the others wait for it.
    pub(super) fn commit(&self, manifest: &Manifest, entry: ManifestEntry) -> io::Result<()> {
        let mut st = super::lock(&self.state);
        let ticket = st.next_ticket;
        st.next_ticket = st.next_ticket.saturating_add(1);
        st.queue.push((ticket, entry));
        loop {
            if ticket < st.done_below {
                return match st.failed.remove(&ticket) {
                    None => Ok(()),
                    Some(why) => Err(io::Error::other(why)),
                };
            }
            if st.busy {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st.busy = true;
            let batch = std::mem::take(&mut st.queue);
            drop(st);
            let result = self.write(manifest, &batch);
            st = super::lock(&self.state);
            st.busy = false;
            if let Some((last, _)) = batch.last() {
                st.done_below = last.saturating_add(1);
            }
            if let Err(e) = result {
                let why = e.to_string();
                for (t, _) in &batch {
                    st.failed.insert(*t, why.clone());
                }
            }
            self.done.notify_all();
        }
    }

    /// The commit itself: the directory first (the renames), then the lines
    /// that name the files.
    fn write(&self, manifest: &Manifest, batch: &[(u64, ManifestEntry)]) -> io::Result<()> {
        crate::store::sync_dir(&self.dir)?;
        manifest.append_all(batch.iter().map(|(_, e)| e))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn entry(n: usize) -> ManifestEntry {
        ManifestEntry {
            file: format!("1.2.3.{n}.dcm"),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: format!("1.2.3.{n}"),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            size: 10,
            sha256: [0; 32],
            key_id: None,
            tag: None,
            calling_ae: "SCU".into(),
            called_ae: "STORE".into(),
            peer: "127.0.0.1:1".into(),
            peer_certificate_subject: None,
            stored_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn concurrent_commits_each_return_once_their_line_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = Arc::new(Manifest::new(dir.path(), None));
        let committer = Arc::new(Committer::new(dir.path().to_owned()));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (m, c) = (Arc::clone(&manifest), Arc::clone(&committer));
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let n = t * 100 + i;
                        c.commit(&m, entry(n)).unwrap();
                        // Returned: the line is in the file already.
                        let text = std::fs::read_to_string(m.path()).unwrap();
                        assert!(text.contains(&format!("\"1.2.3.{n}.dcm\"")));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(manifest.path()).unwrap();
        assert_eq!(text.lines().count(), 200);
        assert!(text.lines().all(|l| ManifestEntry::parse(l, None).is_ok()));
    }
}
