//! Removal of files the log no longer refers to (segments behind the log
//! start, producer snapshots older than the newest few), off the append and
//! write paths. The log forgets a file first and then queues it here; one
//! task per log removes queued files in order, through glommio's blocking
//! thread, so no unlink (slow for a large file) runs on the shard's thread.
//! `Log::close` drains the queue, so nothing queued outlives the log's
//! directory or runs after the directory is opened again.

use std::path::PathBuf;
use std::rc::Rc;

use futures::channel::oneshot;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use crate::file;
use crate::segment::SegmentFile;

/// How long a retired segment waits for its last readers: 600 × 100 ms.
const RETIRE_WAITS_MAX: usize = 600;
const RETIRE_WAIT_MS: u64 = 100;

enum Chore {
    /// A segment the log dropped: closed first when nothing else holds it,
    /// so that the unlink, not the close, frees its space.
    Segment(Rc<SegmentFile>),
    /// A segment a clean replaced, its `.log` renamed to `path`: closed once
    /// nothing else holds it (so that its blocks are freed by the unlink, on
    /// the blocking thread, not by a close on the shard's), then removed.
    Retired(Rc<SegmentFile>, PathBuf),
    /// Files the log dropped.
    Files(Vec<PathBuf>),
    /// Answered once everything queued before it is done.
    Barrier(oneshot::Sender<()>),
}

/// The handle of a log's janitor task; the task ends when the handle is dropped.
pub(super) struct Janitor {
    // Unbounded, yet bounded in practice: every chore is files the log just
    // dropped from its state, so the queue never holds more than the files
    // the partition had.
    chores: LocalSender<Chore>,
}

impl Janitor {
    /// Starts the janitor task on the current executor.
    pub(super) fn start() -> Janitor {
        let (chores, queue) = local_channel::new_unbounded();
        glommio::spawn_local(run(queue)).detach();
        Janitor { chores }
    }

    /// Removes a segment's files, which the log no longer refers to.
    pub(super) fn remove_segment(&self, segment: Rc<SegmentFile>) {
        self.queue(Chore::Segment(segment));
    }

    /// Closes and removes a segment a clean replaced, renamed to `path`.
    pub(super) fn retire_segment(&self, segment: Rc<SegmentFile>, path: PathBuf) {
        self.queue(Chore::Retired(segment, path));
    }

    /// Removes files the log no longer refers to.
    pub(super) fn remove_files(&self, paths: Vec<PathBuf>) {
        self.queue(Chore::Files(paths));
    }

    /// Waits until everything queued so far is removed.
    pub(super) async fn drain(&self) {
        let (done, wait) = oneshot::channel();
        self.queue(Chore::Barrier(done));
        let _ = wait.await;
    }

    fn queue(&self, chore: Chore) {
        if self.chores.try_send(chore).is_err() {
            // Only when the task is gone, which happens with the handle only.
            tracing::error!("log janitor stopped; files left in place");
        }
    }
}

async fn run(queue: LocalReceiver<Chore>) {
    while let Some(chore) = queue.recv().await {
        match chore {
            Chore::Segment(segment) => {
                let paths = segment.paths();
                if let Ok(segment) = Rc::try_unwrap(segment) {
                    if let Err(e) = segment.file.close().await {
                        tracing::warn!(path = %segment.log_path.display(), error = %e, "cannot close segment");
                    }
                }
                remove(&paths).await;
            }
            Chore::Retired(mut segment, path) => {
                // Readers of the old segment finish with it first (bounded wait).
                for _ in 0..RETIRE_WAITS_MAX {
                    match Rc::try_unwrap(segment) {
                        Ok(owned) => {
                            if let Err(e) = owned.file.close().await {
                                tracing::warn!(path = %path.display(), error = %e, "cannot close segment");
                            }
                            break;
                        }
                        Err(shared) => {
                            segment = shared;
                            glommio::timer::sleep(std::time::Duration::from_millis(RETIRE_WAIT_MS)).await;
                        }
                    }
                }
                remove(&[path]).await;
            }
            Chore::Files(paths) => remove(&paths).await,
            Chore::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

async fn remove(paths: &[PathBuf]) {
    for path in paths {
        if let Err(e) = file::remove_if_exists(path).await {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chores_run_in_order_and_drain_waits_for_them() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = std::env::temp_dir().join(format!("sluice-janitor-{}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                let paths: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("f{i}"))).collect();
                for path in &paths {
                    std::fs::write(path, b"x").unwrap();
                }
                let janitor = Janitor::start();
                janitor.remove_files(paths[..2].to_vec());
                janitor.remove_files(vec![dir.join("never-existed")]);
                assert!(paths[0].exists(), "queued, not removed on the caller's path");
                janitor.drain().await;
                assert!(!paths[0].exists() && !paths[1].exists());
                assert!(paths[2].exists());
                std::fs::remove_dir_all(&dir).unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
