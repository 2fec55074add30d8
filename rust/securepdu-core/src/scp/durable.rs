//! Making received objects durable: fsync, rename, manifest line, handler.
//!
//! With a standard peer this runs on the association's thread and the
//! C-STORE-RSP follows it, as PS3.4 expects. When the peer negotiated an
//! asynchronous operations window (PS3.7 D.3.3.3), the peer may send the next
//! objects before the previous answers; then a few worker threads per
//! association make objects durable while the association's thread keeps
//! receiving, and each answer is sent once its object is on disk. Success is
//! never answered earlier than with a standard peer, only the waiting overlaps.
//! Workers start when objects are waiting for one, so an association that
//! stores nothing (a C-ECHO) costs no thread.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::{lock, Inner, StoredObject, HANDLER_FAILED};
use crate::dimse::{status, CStoreRq};
use crate::integrity::{
    ct_eq, format_rfc3339, Digests, ManifestEntry, PendingDigests, INTEGRITY_CHECK_FAILED, TAG_LEN,
};
use crate::store::PartialObject;
use crate::tls::PeerCertificate;

/// Most operations we let a peer have outstanding (our Maximum Number of
/// Operations Performed). Enough to cover a few fsyncs of small objects; each
/// outstanding operation holds a file descriptor and at most the last 1 MiB of
/// its object (the rest is written already, see `store/direct.rs`).
pub const MAX_OPS_PERFORMED: u16 = 16;

/// Worker threads per association that make objects durable in parallel: the
/// file system batches their journal commits, so a few fsyncs at once take
/// little longer than one, and each worker spends much of an object waiting
/// on the device. Half the window: on 2 cores, 200 CT objects of 0.5 MB went
/// at ~465 MB/s with 4 workers, ~520 with 8 and ~518 with 16.
const WORKERS: usize = 8;

/// Who sent the objects of one association: what the manifest and handler see.
pub(super) struct Origin {
    pub(super) inner: Arc<Inner>,
    pub(super) calling_ae: String,
    pub(super) called_ae: String,
    pub(super) peer: SocketAddr,
    pub(super) peer_certificate: Option<PeerCertificate>,
}

/// A received object, written whole, to check and make durable.
pub(super) struct Job {
    pub(super) context_id: u8,
    pub(super) rq: CStoreRq,
    pub(super) transfer_syntax: String,
    pub(super) writer: PartialObject,
    /// Its digests, perhaps still being computed by the hashing worker.
    pub(super) digests: PendingDigests,
    /// With integrity in force: the key id and the tag the peer sent.
    pub(super) tag: Option<(String, [u8; TAG_LEN])>,
}

/// The answer to send for a job.
pub(super) struct Done {
    pub(super) context_id: u8,
    pub(super) rq: CStoreRq,
    pub(super) status: u16,
    pub(super) comment: Option<String>,
}

impl Origin {
    /// Checks the object's tag (with integrity in force), makes it durable,
    /// records it in the manifest, then asks the handler: the answer to send.
    pub(super) fn finish(&self, job: Job) -> Done {
        let (status, comment) = self.check_and_store(
            &job.rq,
            &job.transfer_syntax,
            job.writer,
            job.digests,
            job.tag,
        );
        Done {
            context_id: job.context_id,
            rq: job.rq,
            status,
            comment,
        }
    }

    /// Tells the handler that a C-STORE failed its integrity check; the status
    /// and comment to answer.
    pub(super) fn integrity_failed(&self, rq: &CStoreRq, detail: &str) -> (u16, Option<String>) {
        let handler = &self.inner.handler;
        let uid = &rq.affected_sop_instance_uid;
        let _ = catch_unwind(AssertUnwindSafe(|| {
            handler.on_integrity_failure(self.peer, uid, detail);
        }));
        (
            INTEGRITY_CHECK_FAILED,
            Some(format!("integrity check failed: {detail}")),
        )
    }

    /// The peer's tag is compared with ours, in constant time, before
    /// anything is made durable; a mismatch removes the temporary file.
    fn check_and_store(
        &self,
        rq: &CStoreRq,
        transfer_syntax: &str,
        writer: PartialObject,
        digests: PendingDigests,
        tag: Option<(String, [u8; TAG_LEN])>,
    ) -> (u16, Option<String>) {
        // Without a hashing worker the writer hashed the file itself: sha256
        // is None here and the writer has it.
        let (sha256, ours) = match digests.wait() {
            Ok(Digests { sha256, tag }) => (sha256, tag),
            Err(e) => return (status::OUT_OF_RESOURCES, Some(format!("cannot store: {e}"))),
        };
        if let Some((_, theirs)) = &tag {
            if !ours.is_some_and(|ours| ct_eq(&ours, theirs)) {
                drop(writer); // removes the temporary file
                return self.integrity_failed(rq, "tag mismatch");
            }
        }
        let integrity = tag;
        // The directory fsync that makes the rename durable is part of the
        // group commit below, shared with objects stored at the same time.
        let done = match writer.finish_renamed(sha256) {
            Ok(done) => done,
            Err(e) => return (status::OUT_OF_RESOURCES, Some(format!("cannot store: {e}"))),
        };
        let entry = ManifestEntry {
            file: done
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sop_class_uid: rq.affected_sop_class_uid.clone(),
            sop_instance_uid: rq.affected_sop_instance_uid.clone(),
            transfer_syntax: transfer_syntax.to_owned(),
            size: done.size,
            sha256: done.sha256,
            key_id: integrity.as_ref().map(|(k, _)| k.clone()),
            tag: integrity.as_ref().map(|(_, t)| *t),
            calling_ae: self.calling_ae.clone(),
            called_ae: self.called_ae.clone(),
            peer: self.peer.to_string(),
            peer_certificate_subject: self
                .peer_certificate
                .as_ref()
                .and_then(|c| c.subject.clone()),
            stored_at: format_rfc3339(SystemTime::now()),
        };
        if let Err(e) = self.inner.committer.commit(&self.inner.manifest, entry) {
            // Not durable, or unrecorded and so unverifiable: not stored; the
            // peer may retry.
            let _ = std::fs::remove_file(&done.path);
            return (
                status::OUT_OF_RESOURCES,
                Some(format!("cannot commit the object: {e}")),
            );
        }
        let obj = StoredObject {
            path: done.path,
            sop_class_uid: rq.affected_sop_class_uid.clone(),
            sop_instance_uid: rq.affected_sop_instance_uid.clone(),
            transfer_syntax: transfer_syntax.to_owned(),
            calling_ae: self.calling_ae.clone(),
            called_ae: self.called_ae.clone(),
            peer: self.peer,
            size: done.size,
            peer_certificate: self.peer_certificate.clone(),
            sha256: done.sha256,
            integrity,
        };
        let handler = &self.inner.handler;
        match catch_unwind(AssertUnwindSafe(|| handler.on_stored(&obj))) {
            Ok(Ok(None)) => (status::SUCCESS, None),
            Ok(Ok(Some(s))) => (s.status, s.error_comment),
            Ok(Err(msg)) => (HANDLER_FAILED, Some(msg)),
            Err(_) => (HANDLER_FAILED, Some("storage handler panicked".into())),
        }
    }
}

/// Worker threads making one association's objects durable.
pub(super) struct Pool {
    origin: Arc<Origin>,
    jobs: Option<Sender<Job>>,
    /// Where idle workers wait for the next job, one at a time.
    queue: Arc<Mutex<Receiver<Job>>>,
    done_tx: Sender<Done>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    outstanding: usize,
}

impl Pool {
    /// A pool without workers yet.
    pub(super) fn new(origin: Arc<Origin>) -> Self {
        let (jobs, job_rx) = channel::<Job>();
        let (done_tx, done) = channel::<Done>();
        Self {
            origin,
            jobs: Some(jobs),
            queue: Arc::new(Mutex::new(job_rx)),
            done_tx,
            done,
            workers: Vec::new(),
            outstanding: 0,
        }
    }

    /// Operations handed over and not yet answered.
    pub(super) fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Hands `job` to the workers, starting one more if every worker is busy;
    /// gives the job back if no worker runs or can be started.
    pub(super) fn submit(&mut self, job: Job) -> Option<Job> {
        if self.outstanding >= self.workers.len() && self.workers.len() < WORKERS {
            let (origin, queue, done) = (
                Arc::clone(&self.origin),
                Arc::clone(&self.queue),
                self.done_tx.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name(format!(
                    "securepdu-scp-durable-{}-{}",
                    self.origin.peer.port(),
                    self.workers.len()
                ))
                .spawn(move || work(&origin, &queue, &done));
            if let Ok(handle) = spawned {
                self.workers.push(handle);
            }
        }
        let Some(tx) = self.jobs.as_ref().filter(|_| !self.workers.is_empty()) else {
            return Some(job);
        };
        match tx.send(job) {
            Ok(()) => {
                self.outstanding += 1;
                None
            }
            Err(e) => Some(e.0),
        }
    }

    /// Answers that are ready, without waiting.
    pub(super) fn ready(&mut self) -> Vec<Done> {
        let ready: Vec<Done> = self.done.try_iter().collect();
        self.outstanding = self.outstanding.saturating_sub(ready.len());
        ready
    }

    /// The next answer, waiting up to `timeout`; `None` on timeout.
    pub(super) fn wait(&mut self, timeout: Duration) -> Option<Done> {
        let done = self.done.recv_timeout(timeout).ok()?;
        self.outstanding = self.outstanding.saturating_sub(1);
        Some(done)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue lets the workers finish what is queued and stop.
        // An object received whole is still made durable even if its answer
        // can no longer be sent; the association ends after that, so a server
        // shutting down waits for it.
        self.jobs = None;
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

fn work(origin: &Origin, queue: &Mutex<Receiver<Job>>, done: &Sender<Done>) {
    loop {
        // One idle worker at a time waits for the next job; the lock is
        // released before the job is stored.
        let Ok(job) = lock(queue).recv() else {
            return;
        };
        let (context_id, rq) = (job.context_id, job.rq.clone());
        let finished = catch_unwind(AssertUnwindSafe(|| origin.finish(job))).unwrap_or(Done {
            context_id,
            rq,
            status: status::OUT_OF_RESOURCES,
            comment: Some("internal error while storing".into()),
        });
        if done.send(finished).is_err() {
            return;
        }
    }
}
