//! Hashing off the I/O thread: for large objects, one worker thread per
//! association computes the file SHA-256 and the integrity tag while the
//! association's thread keeps reading or writing the socket.
//!
//! Chunks go to the worker as [`Bytes`] (reference-counted, never copied)
//! through a bounded channel of about [`PIPELINE_BYTES`], so memory stays
//! bounded and a slow hasher slows the transfer rather than buffering it. The
//! I/O thread waits for the digests only at the end of the object
//! ([`Hasher::finish`]). Objects up to [`OFFLOAD_AFTER`] bytes are hashed
//! inline: for them a hand-off costs more than it saves. If the worker cannot
//! be started, hashing stays inline with the same results; if it stops (it
//! cannot panic on any input, but a panic is caught), the object in progress
//! fails with [`HasherGone`] and later ones are hashed inline.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use bytes::Bytes;
use ring::digest;

use super::{to32, Tagger, TAG_LEN};

/// Bytes queued for the worker, about: the queue holds this divided by the
/// size of the chunk that started the worker (one PDV's data, stable within an
/// association), within [`MIN_DEPTH`]..=[`MAX_DEPTH`] chunks. A few ms of
/// hashing, so the threads rarely wait on each other.
pub const PIPELINE_BYTES: usize = 4 << 20;

/// Fewest chunks queued (very large PDVs).
pub const MIN_DEPTH: usize = 2;

/// Most chunks queued (small PDVs).
pub const MAX_DEPTH: usize = 16;

/// The digests of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Digests {
    /// SHA-256 over everything given to [`Hasher::file`] and [`Hasher::data`],
    /// in order, when requested at [`Hasher::begin`].
    pub sha256: Option<[u8; 32]>,
    /// The integrity tag over everything given to [`Hasher::data`], when a
    /// [`Tagger`] was given at [`Hasher::begin`].
    pub tag: Option<[u8; TAG_LEN]>,
}

/// The hashing worker stopped: the object in progress has no digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the hashing thread stopped")]
pub struct HasherGone;

/// What one object is hashed with.
#[derive(Default)]
struct State {
    sha256: Option<digest::Context>,
    tagger: Option<Tagger>,
}

impl State {
    fn new(file: bool, tagger: Option<Tagger>) -> Self {
        Self {
            sha256: file.then(|| digest::Context::new(&digest::SHA256)),
            tagger,
        }
    }

    fn file(&mut self, chunk: &[u8]) {
        if let Some(s) = &mut self.sha256 {
            s.update(chunk);
        }
    }

    fn data(&mut self, chunk: &[u8]) {
        self.file(chunk);
        if let Some(t) = &mut self.tagger {
            t.update(chunk);
        }
    }

    fn finish(&mut self) -> Digests {
        let state = std::mem::take(self);
        Digests {
            sha256: state.sha256.map(|s| to32(s.finish().as_ref())),
            tag: state.tagger.map(Tagger::finish),
        }
    }
}

enum Job {
    // Boxed: a hash state is ~0.5 KB, a chunk 32 bytes; one box per object.
    Begin(Box<State>),
    File(Bytes),
    Data(Bytes),
    /// The object is complete: its digests go to this sender.
    End(Sender<Digests>),
}

struct Worker {
    jobs: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// The digests of a finished object, perhaps still being computed
/// ([`Hasher::finish_later`]).
#[derive(Debug)]
pub enum PendingDigests {
    /// Computed already.
    Ready(Digests),
    /// Computed by the worker; [`PendingDigests::wait`] blocks until they are.
    Later(Receiver<Digests>),
    /// The file SHA-256 and the tag computed by two workers.
    Split(Receiver<Digests>, Receiver<Digests>),
    /// The worker stopped before computing them.
    Gone,
}

impl PendingDigests {
    /// The digests, waiting for the worker if needed.
    pub fn wait(self) -> Result<Digests, HasherGone> {
        match self {
            Self::Ready(d) => Ok(d),
            Self::Later(rx) => rx.recv().map_err(|_| HasherGone),
            Self::Split(file, tag) => {
                let file = file.recv().map_err(|_| HasherGone)?;
                let tag = tag.recv().map_err(|_| HasherGone)?;
                Ok(Digests {
                    sha256: file.sha256,
                    tag: tag.tag,
                })
            }
            Self::Gone => Err(HasherGone),
        }
    }
}

impl Worker {
    /// Starts the thread; `None` if it cannot be started.
    fn spawn(name: &str, chunk_len: usize) -> Option<Self> {
        let depth = (PIPELINE_BYTES / chunk_len.max(1)).clamp(MIN_DEPTH, MAX_DEPTH);
        let (jobs, job_rx) = sync_channel::<Job>(depth);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // A panic ends the thread and drops its channel ends: the I/O
                // thread then sees HasherGone, never the panic.
                let _ = catch_unwind(AssertUnwindSafe(|| work(&job_rx)));
            })
            .ok()?;
        Some(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }
}

enum Mode {
    /// Hashed on the caller's thread (small objects so far, or no worker).
    Inline(Box<State>),
    /// Handed to the worker; when `split`, the tag to the tag worker.
    Offloaded { split: bool },
    /// The worker stopped during the current object.
    Broken,
}

/// The per-association hasher: [`begin`](Self::begin) an object, feed it with
/// [`file`](Self::file) and [`data`](Self::data), then [`finish`](Self::finish).
/// Beginning an object discards an unfinished one.
///
/// An object is hashed inline until it passes [`OFFLOAD_AFTER`] bytes; then its
/// hash state moves to the worker thread (started then, once per association),
/// which hashes the rest while the caller does I/O. Small objects thus cost no
/// thread hand-off, and an association that never sees a large one no thread.
pub struct Hasher {
    name: String,
    mode: Mode,
    /// Bytes of the current object so far.
    seen: u64,
    /// `Some` once started; never restarted after it stopped or failed to start.
    worker: Option<Worker>,
    /// Computes the tag of objects that need a file SHA-256 too, so the two
    /// digests take two cores instead of one after the other (the receiver
    /// of an integrity-protected object needs both).
    tag_worker: Option<Worker>,
    /// Whether the tag worker may still be started.
    may_spawn_tag: bool,
    /// Whether a worker may still be started.
    may_spawn: bool,
    /// Bytes of one object hashed inline before the rest goes to the worker.
    offload_after: u64,
}

/// Bytes of one object hashed inline before the rest goes to the worker.
pub const OFFLOAD_AFTER: u64 = 2 << 20;

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Inline(_) => "inline",
            Mode::Offloaded { split: false } => "offloaded",
            Mode::Offloaded { split: true } => "offloaded to two workers",
            Mode::Broken => "broken",
        };
        f.debug_struct("Hasher")
            .field("name", &self.name)
            .field("mode", &mode)
            .field("worker", &self.worker.is_some())
            .finish()
    }
}

impl Hasher {
    /// A hasher whose worker thread, when needed, is named `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            mode: Mode::Inline(Box::default()),
            seen: 0,
            worker: None,
            may_spawn: true,
            tag_worker: None,
            may_spawn_tag: true,
            offload_after: OFFLOAD_AFTER,
        }
    }

    /// A hasher that hands every object to its worker from the first byte:
    /// for a caller that does not wait for the digests at the end of each
    /// object ([`Self::finish_later`]), so hashing never holds up its I/O.
    pub fn eager(name: &str) -> Self {
        Self {
            offload_after: 0,
            ..Self::new(name)
        }
    }

    /// A hasher that never starts a thread (same results).
    pub fn inline() -> Self {
        Self {
            may_spawn: false,
            may_spawn_tag: false,
            ..Self::new("")
        }
    }

    /// Whether the current object is being hashed on the worker thread.
    pub fn is_offloaded(&self) -> bool {
        matches!(self.mode, Mode::Offloaded { .. })
    }

    /// Starts an object: a file SHA-256 when `file`, a tag when `tagger` is given.
    pub fn begin(&mut self, file: bool, tagger: Option<Tagger>) {
        self.mode = Mode::Inline(Box::new(State::new(file, tagger)));
        self.seen = 0;
    }

    /// Bytes of the file that are not data set (the Part 10 header): SHA-256 only.
    pub fn file(&mut self, chunk: Bytes) -> Result<(), HasherGone> {
        self.feed(chunk, false)
    }

    /// Data set bytes: SHA-256 and tag. Once offloaded, blocks while the queue
    /// is full (about [`PIPELINE_BYTES`]).
    pub fn data(&mut self, chunk: Bytes) -> Result<(), HasherGone> {
        self.feed(chunk, true)
    }

    fn feed(&mut self, chunk: Bytes, data: bool) -> Result<(), HasherGone> {
        self.seen = self.seen.saturating_add(chunk.len() as u64);
        if self.seen > self.offload_after {
            self.offload(chunk.len())?;
        }
        let result = match &mut self.mode {
            Mode::Inline(s) => {
                if data {
                    s.data(&chunk);
                } else {
                    s.file(&chunk);
                }
                Ok(())
            }
            Mode::Offloaded { split } => match (&self.worker, &self.tag_worker) {
                (Some(w), Some(t)) if data && *split => {
                    send(w, Job::Data(chunk.clone())).and_then(|()| send(t, Job::Data(chunk)))
                }
                (Some(w), _) if data => send(w, Job::Data(chunk)),
                (Some(w), _) => send(w, Job::File(chunk)),
                (None, _) => Err(HasherGone),
            },
            Mode::Broken => Err(HasherGone),
        };
        self.check(result)
    }

    /// Moves the current object's hash state to the worker (starting it if
    /// needed), its tag to the tag worker when it needs both digests; stays
    /// inline if there is no worker.
    fn offload(&mut self, chunk_len: usize) -> Result<(), HasherGone> {
        if !matches!(self.mode, Mode::Inline(_)) {
            return Ok(());
        }
        if self.worker.is_none() && self.may_spawn {
            self.may_spawn = false;
            self.worker = Worker::spawn(&self.name, chunk_len);
        }
        if self.worker.is_none() {
            return Ok(());
        }
        let Mode::Inline(mut state) =
            std::mem::replace(&mut self.mode, Mode::Offloaded { split: false })
        else {
            return Ok(());
        };
        if state.sha256.is_some() && state.tagger.is_some() {
            if self.tag_worker.is_none() && self.may_spawn_tag {
                self.may_spawn_tag = false;
                self.tag_worker = Worker::spawn(&format!("{}-tag", self.name), chunk_len);
            }
            if let Some(t) = &self.tag_worker {
                let tag_state = Box::new(State {
                    sha256: None,
                    tagger: state.tagger.take(),
                });
                let result = send(t, Job::Begin(tag_state));
                self.check(result)?;
                self.mode = Mode::Offloaded { split: true };
            }
        }
        let Some(w) = &self.worker else {
            return Err(HasherGone);
        };
        let result = send(w, Job::Begin(state));
        self.check(result)
    }

    /// The digests of the current object (waits for the worker if offloaded).
    pub fn finish(&mut self) -> Result<Digests, HasherGone> {
        let result = self.finish_later().wait();
        self.check(result)
    }

    /// Ends the current object without waiting for its digests: the worker
    /// goes on with them while the caller starts the next object.
    pub fn finish_later(&mut self) -> PendingDigests {
        let result = match &mut self.mode {
            Mode::Inline(s) => Ok(PendingDigests::Ready(s.finish())),
            Mode::Offloaded { split } => match (&self.worker, &self.tag_worker) {
                (Some(w), Some(t)) if *split => {
                    let (file_tx, file_rx) = channel();
                    let (tag_tx, tag_rx) = channel();
                    send(w, Job::End(file_tx))
                        .and_then(|()| send(t, Job::End(tag_tx)))
                        .map(|()| PendingDigests::Split(file_rx, tag_rx))
                }
                (Some(w), _) => {
                    let (tx, rx) = channel();
                    send(w, Job::End(tx)).map(|()| PendingDigests::Later(rx))
                }
                (None, _) => Err(HasherGone),
            },
            Mode::Broken => Err(HasherGone),
        };
        self.check(result).unwrap_or(PendingDigests::Gone)
    }

    /// After a failure the worker is gone for good: stop using it (later
    /// objects are hashed inline).
    fn check<T>(&mut self, result: Result<T, HasherGone>) -> Result<T, HasherGone> {
        if result.is_err() {
            self.mode = Mode::Broken;
            self.worker = None;
            self.tag_worker = None;
        }
        result
    }
}

fn send(w: &Worker, job: Job) -> Result<(), HasherGone> {
    w.jobs
        .as_ref()
        .ok_or(HasherGone)?
        .send(job)
        .map_err(|_| HasherGone)
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the queue ends the worker once it has hashed what is queued.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn work(jobs: &Receiver<Job>) {
    let mut state = State::default();
    for job in jobs {
        match job {
            Job::Begin(s) => state = *s,
            Job::File(b) => state.file(&b),
            Job::Data(b) => state.data(&b),
            // Nobody waiting any more is not an error: the object was dropped.
            Job::End(to) => drop(to.send(state.finish())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::{sha256, SessionKey};

    fn tagger() -> Tagger {
        SessionKey::from_bytes(&[9; 32]).tagger(7, "1.2", "1.2.3", "1.2.840.10008.1.2")
    }

    fn run(h: &mut Hasher, header: &[u8], chunks: &[&[u8]], tag: bool) -> Digests {
        h.begin(true, tag.then(tagger));
        h.file(Bytes::copy_from_slice(header)).unwrap();
        for c in chunks {
            h.data(Bytes::copy_from_slice(c)).unwrap();
        }
        h.finish().unwrap()
    }

    fn expected(header: &[u8], data: &[u8]) -> Digests {
        let mut whole = header.to_vec();
        whole.extend_from_slice(data);
        let mut t = tagger();
        t.update(data);
        Digests {
            sha256: Some(sha256(&whole)),
            tag: Some(t.finish()),
        }
    }

    #[test]
    fn offloaded_and_inline_agree_with_one_shot() {
        let len = usize::try_from(OFFLOAD_AFTER).unwrap() * 2 + 12_345;
        let big: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let small = &big[..100_000];
        let big_chunks: Vec<&[u8]> = big.chunks(262_138).collect();
        let small_chunks: Vec<&[u8]> = small.chunks(7_777).collect();
        let (want_big, want_small) = (expected(b"HEADER", &big), expected(b"HEADER", small));
        let mut h = Hasher::new("test-hasher");
        assert_eq!(run(&mut h, b"HEADER", &small_chunks, true), want_small);
        assert!(h.worker.is_none(), "small objects start no thread");
        for _ in 0..2 {
            assert_eq!(run(&mut h, b"HEADER", &small_chunks, true), want_small);
            assert!(!h.is_offloaded(), "small objects stay inline");
            assert_eq!(run(&mut h, b"HEADER", &big_chunks, true), want_big);
            assert!(matches!(h.mode, Mode::Offloaded { split: true }));
            assert_eq!(
                run(&mut Hasher::inline(), b"HEADER", &big_chunks, true),
                want_big
            );
        }
        // An abandoned object, inline or offloaded, does not leak into the next.
        for abandoned in [&small_chunks, &big_chunks] {
            h.begin(true, Some(tagger()));
            for c in abandoned.iter() {
                h.data(Bytes::copy_from_slice(c)).unwrap();
            }
            assert_eq!(run(&mut h, b"HEADER", &big_chunks, true), want_big);
            assert_eq!(run(&mut h, b"HEADER", &small_chunks, true), want_small);
        }
        let plain = run(&mut h, b"HEADER", &big_chunks, false);
        assert_eq!((plain.sha256, plain.tag), (want_big.sha256, None));
        h.begin(false, Some(tagger()));
        for c in &big_chunks {
            h.data(Bytes::copy_from_slice(c)).unwrap();
        }
        let want_tag = Digests {
            sha256: None,
            tag: expected(b"", &big).tag,
        };
        assert_eq!(h.finish().unwrap(), want_tag);
    }

    #[test]
    fn eager_hasher_finishes_later_in_order() {
        // Objects follow each other without waiting for their digests, as the
        // SCP does with an asynchronous operations window.
        let objects: Vec<Vec<u8>> = (0..6u8)
            .map(|n| {
                (0..(20_000 + usize::from(n) * 70_001))
                    .map(|i| (i as u8) ^ n)
                    .collect()
            })
            .collect();
        let mut h = Hasher::eager("test-eager");
        let pending: Vec<(PendingDigests, Digests)> = objects
            .iter()
            .enumerate()
            .map(|(n, data)| {
                let tag = n % 2 == 0;
                h.begin(true, tag.then(tagger));
                h.file(Bytes::from_static(b"HDR")).unwrap();
                for c in data.chunks(16_384) {
                    h.data(Bytes::copy_from_slice(c)).unwrap();
                }
                assert!(h.is_offloaded(), "eager offloads from the first byte");
                let mut want = expected(b"HDR", data);
                if !tag {
                    want.tag = None;
                }
                (h.finish_later(), want)
            })
            .collect();
        for (p, want) in pending {
            assert_eq!(p.wait().unwrap(), want);
        }
    }

    #[test]
    fn a_stopped_worker_is_an_error_then_inline() {
        let big = vec![1u8; usize::try_from(OFFLOAD_AFTER).unwrap() + 1];
        let mut h = Hasher::new("test-hasher");
        h.begin(true, None);
        h.data(Bytes::from(big.clone())).unwrap();
        assert!(h.is_offloaded());
        // The worker's death: its queue closes under the hasher.
        if let Some(w) = &mut h.worker {
            w.jobs = None;
            if let Some(t) = w.thread.take() {
                t.join().unwrap();
            }
        }
        assert_eq!(h.data(Bytes::from_static(b"x")), Err(HasherGone));
        assert_eq!(h.finish(), Err(HasherGone));
        let d = run(&mut h, b"", &[&big], false);
        assert_eq!(d.sha256, Some(sha256(&big)));
        assert!(!h.is_offloaded() && h.worker.is_none());
    }
}
