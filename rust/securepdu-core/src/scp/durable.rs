//! Making received objects durable: fsync, rename, manifest line, handler.
//!
//! With a standard peer this runs on the association's thread and the
//! C-STORE-RSP follows it, as PS3.4 expects. When the peer negotiated an
//! asynchronous operations window (PS3.7 D.3.3.3), the peer may send the next
//! objects before the previous answers; then worker threads make objects
//! durable while the association's thread keeps receiving, and each answer is
//! sent once its object is on disk. Success is never answered earlier than with
//! a standard peer, only the waiting overlaps.
//!
//! The workers belong to the server, not to an association, so the threads a
//! server runs stay bounded however many associations store at once, and a
//! worker that finishes one association's object takes the next object of any
//! association. A worker wakes the association's thread when its answer is
//! ready (a [`Waker`]) instead of that thread polling every millisecond: with
//! 64 associations at once, 64 threads polling cost more CPU than the
//! answers. Workers start when objects wait for one and leave after [`IDLE`]
//! without work, so a server that stores nothing (C-ECHO only) costs no thread.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{lock, Inner, StoredObject, HANDLER_FAILED};
use crate::conn::Waker;
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

/// Worker threads of a server that make objects durable in parallel: each
/// spends most of an object waiting for the device, and the device serves
/// many fsyncs at once little slower than one. 200 CT objects of 0.5 MB on 2
/// cores, spread over 64 associations at once (medians of 5 interleaved runs,
/// MB/s): 8 workers 515, 24 591, 48 606-630, 128 620; on one association
/// (window 16) 643-675 with any of them. The 8 workers per association before
/// gave 559 and 649.
const WORKERS: usize = 48;

/// A worker without work for this long leaves.
const IDLE: Duration = Duration::from_secs(2);

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

/// A job of one association, with where its answer goes.
struct Task {
    origin: Arc<Origin>,
    job: Job,
    done: Sender<Done>,
    /// Tells the association's thread that the answer is there.
    wake: Option<Waker>,
}

/// The server's durability workers and their queue, shared by its associations.
pub(super) struct Workers {
    /// `None` once the server stopped: then workers finish the queue and leave.
    queue: Mutex<Option<Sender<Task>>>,
    /// Where idle workers wait for the next task, one at a time.
    tasks: Arc<Mutex<Receiver<Task>>>,
    /// Workers running, and those of them waiting for a task.
    live: Arc<AtomicUsize>,
    idle: Arc<AtomicUsize>,
}

impl Workers {
    pub(super) fn new() -> Self {
        let (queue, tasks) = channel::<Task>();
        Self {
            queue: Mutex::new(Some(queue)),
            tasks: Arc::new(Mutex::new(tasks)),
            live: Arc::new(AtomicUsize::new(0)),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Stops taking tasks; the workers finish those queued and leave.
    pub(super) fn close(&self) {
        lock(&self.queue).take();
    }

    /// Queues `task`, starting a worker if none is idle and fewer than
    /// [`WORKERS`] run; gives the task back once the server stopped.
    fn submit(&self, task: Task) -> Option<Task> {
        {
            let queue = lock(&self.queue);
            let Some(tx) = queue.as_ref() else {
                return Some(task);
            };
            if let Err(e) = tx.send(task) {
                return Some(e.0);
            }
        }
        // Sent before looking: a worker that leaves after this sees the task
        // when it looks at the queue one last time (see `work`).
        if self.idle.load(Ordering::SeqCst) == 0 && !self.start_worker() {
            // No worker could be started and none runs: do the queued tasks
            // here, so that none waits forever.
            while self.live.load(Ordering::SeqCst) == 0 {
                let next = lock(&self.tasks).try_recv();
                let Ok(task) = next else { break };
                run(task);
            }
        }
        None
    }

    /// Starts one more worker, if fewer than [`WORKERS`] run; whether one runs
    /// now that did not before.
    fn start_worker(&self) -> bool {
        let room = self
            .live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < WORKERS).then_some(n + 1)
            })
            .is_ok();
        if !room {
            return false;
        }
        let (tasks, live, idle) = (
            Arc::clone(&self.tasks),
            Arc::clone(&self.live),
            Arc::clone(&self.idle),
        );
        let spawned = std::thread::Builder::new()
            .name("securepdu-scp-durable".into())
            .spawn(move || work(&tasks, &live, &idle));
        if spawned.is_err() {
            self.live.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }
}

fn work(tasks: &Mutex<Receiver<Task>>, live: &AtomicUsize, idle: &AtomicUsize) {
    loop {
        idle.fetch_add(1, Ordering::SeqCst);
        let idle_since = Instant::now();
        // One idle worker at a time waits for the next task, the others for
        // the lock, and their idle time counts; the lock is released before
        // the task is run.
        let next = {
            let queue = lock(tasks);
            queue.recv_timeout(IDLE.saturating_sub(idle_since.elapsed()))
        };
        idle.fetch_sub(1, Ordering::SeqCst);
        match next {
            Ok(task) => run(task),
            Err(RecvTimeoutError::Disconnected) => {
                live.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                // Leave, but look once more after counting ourselves out: a
                // task queued while we were still counted as idle started no
                // worker, and is ours.
                live.fetch_sub(1, Ordering::SeqCst);
                let last = lock(tasks).try_recv();
                match last {
                    Ok(task) => {
                        live.fetch_add(1, Ordering::SeqCst);
                        run(task);
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
                }
            }
        }
    }
}

/// Makes one object durable and sends its answer to its association.
fn run(task: Task) {
    let Task {
        origin,
        job,
        done,
        wake,
    } = task;
    let (context_id, rq) = (job.context_id, job.rq.clone());
    let finished = catch_unwind(AssertUnwindSafe(|| origin.finish(job))).unwrap_or(Done {
        context_id,
        rq,
        status: status::OUT_OF_RESOURCES,
        comment: Some("internal error while storing".into()),
    });
    // An association gone already (its thread panicked) cannot be answered;
    // the object is durable all the same.
    if done.send(finished).is_ok() {
        if let Some(wake) = wake {
            wake.wake();
        }
    }
}

/// One association's jobs on the server's workers, and their answers.
pub(super) struct Pool {
    origin: Arc<Origin>,
    done_tx: Option<Sender<Done>>,
    done: Receiver<Done>,
    outstanding: usize,
    wake: Option<Waker>,
}

impl Pool {
    /// `wake`, when given, is woken with each answer.
    pub(super) fn new(origin: Arc<Origin>, wake: Option<Waker>) -> Self {
        let (done_tx, done) = channel::<Done>();
        Self {
            origin,
            done_tx: Some(done_tx),
            done,
            outstanding: 0,
            wake,
        }
    }

    /// Whether answers wake the association's thread (else it polls).
    pub(super) fn wakes(&self) -> bool {
        self.wake.is_some()
    }

    /// Operations handed over and not yet answered.
    pub(super) fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Hands `job` to the server's workers; gives it back once the server
    /// stopped taking work.
    pub(super) fn submit(&mut self, job: Job) -> Option<Job> {
        let Some(done) = self.done_tx.clone() else {
            return Some(job);
        };
        let task = Task {
            origin: Arc::clone(&self.origin),
            job,
            done,
            wake: self.wake.clone(),
        };
        match self.origin.inner.durable.submit(task) {
            None => {
                self.outstanding += 1;
                None
            }
            Some(task) => Some(task.job),
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
        // An object received whole is still made durable even if its answer
        // can no longer be sent; the association ends after that, so a server
        // shutting down waits for it. Every queued task holds a sender: the
        // channel closes once the last of them is done.
        self.done_tx = None;
        while self.done.recv().is_ok() {}
    }
}
