//! Disk reads, and the buffers of disk writes, handed out as `Bytes` without a copy.
//!
//! A glommio read lands in a DMA buffer owned by the shard's reactor (its
//! `ReadResult` is reference-counted without atomics and may come from the
//! reactor's registered-buffer pool), so it must be released on the thread
//! that read it. Responses, though, travel to the shard holding the client's
//! connection. As Seastar's `foreign_ptr` does, a buffer here is `Send`, is
//! only read from other threads, and when its last `Bytes` is dropped on
//! another thread it is queued back to its home shard, which releases it at
//! its next read or background tick ([`release_returned`]).

use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, ThreadId};

use bytes::Bytes;
use glommio::io::{DmaBuffer, ReadResult};

/// Buffers dropped on other threads, waiting for their home thread.
type Returns = Arc<Mutex<Vec<Returned>>>;

thread_local! {
    static RETURNS: Returns = Arc::new(Mutex::new(Vec::new()));
}

/// A DMA buffer owned by one thread's reactor: what a read filled, or what a
/// write was made from (shared with the tail cache, see `log::writer`).
enum Buffer {
    Read(ReadResult),
    Written(Rc<DmaBuffer>),
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        match self {
            Buffer::Read(read) => read,
            // Deref of the `Rc` reads its pointer only; the count is untouched.
            Buffer::Written(buffer) => buffer.as_bytes(),
        }
    }
}

/// A buffer on its way home. Never dropped by itself: if the queue holding it
/// outlives its home thread (at exit), the buffer is leaked rather than
/// released on a thread that does not own it.
struct Returned(ManuallyDrop<Buffer>);

// SAFETY: a `Returned` is only moved between threads; the buffer inside is
// released (dropped) only by `release_returned`, on the thread that made it.
unsafe impl Send for Returned {}

/// The owner behind a DMA buffer's `Bytes`.
struct HomeBound {
    buffer: ManuallyDrop<Buffer>,
    home: ThreadId,
    returns: Returns,
}

// SAFETY: from other threads the buffer is only read (`as_ref`: a pointer and
// a length, no reference count is touched; the kernel finished with it
// before the read or write completed, and nothing writes it after) and moved;
// `Drop` releases it only on its home thread and otherwise queues it there.
// The `ReadResult` or `Rc` inside is the only handle to its buffer that
// leaves the home thread: `bytes_of` and `bytes_of_written` take it whole.
unsafe impl Send for HomeBound {}

impl AsRef<[u8]> for HomeBound {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

impl Drop for HomeBound {
    fn drop(&mut self) {
        if thread::current().id() == self.home {
            // SAFETY: dropped once, here, on the home thread.
            unsafe { ManuallyDrop::drop(&mut self.buffer) }
        } else {
            // SAFETY: taken once; the buffer moves into the queue unreleased.
            let buffer = unsafe { ManuallyDrop::take(&mut self.buffer) };
            self.returns.lock().unwrap_or_else(PoisonError::into_inner).push(Returned(ManuallyDrop::new(buffer)));
        }
    }
}

fn home_bound(buffer: Buffer) -> Bytes {
    let returns = RETURNS.with(Arc::clone);
    Bytes::from_owner(HomeBound { buffer: ManuallyDrop::new(buffer), home: thread::current().id(), returns })
}

/// The bytes of a completed read, without copying them.
pub fn bytes_of(read: ReadResult) -> Bytes {
    if read.is_empty() {
        return Bytes::new();
    }
    home_bound(Buffer::Read(read))
}

/// The bytes of a buffer written (and never changed again), without copying
/// them. The caller gives up its handle: this must be the buffer's last `Rc`
/// besides ones dropped on this thread.
pub fn bytes_of_written(buffer: Rc<DmaBuffer>) -> Bytes {
    home_bound(Buffer::Written(buffer))
}

/// Releases the buffers read on this thread that were last dropped elsewhere;
/// answers how many.
pub fn release_returned() -> usize {
    let returned = RETURNS.with(|r| std::mem::take(&mut *r.lock().unwrap_or_else(PoisonError::into_inner)));
    let count = returned.len();
    for mut buffer in returned {
        // SAFETY: on the home thread (the queue is this thread's), once.
        unsafe { ManuallyDrop::drop(&mut buffer.0) }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::io::OpenOptions;

    #[test]
    fn a_buffer_dropped_on_another_thread_is_released_at_home() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let path = std::env::temp_dir().join(format!("sluice-dma-bytes-{}", std::process::id()));
                let file = OpenOptions::new().read(true).write(true).create(true).dma_open(&path).await.unwrap();
                let mut buf = file.alloc_dma_buffer(4096);
                buf.as_bytes_mut().fill(7);
                file.write_at(buf, 0).await.unwrap();
                let read = file.read_at(0, 4096).await.unwrap();
                let bytes = bytes_of(read);
                let slice = bytes.slice(10..20);
                drop(bytes);
                // The last handle is dropped on another thread, after reading it there.
                let seen = std::thread::spawn(move || slice.iter().map(|b| *b as u32).sum::<u32>()).join().unwrap();
                assert_eq!(seen, 70);
                assert_eq!(release_returned(), 1, "the buffer came home");
                assert_eq!(release_returned(), 0);
                // Dropped at home: released at once, nothing queued.
                drop(bytes_of(file.read_at(0, 4096).await.unwrap()));
                assert_eq!(release_returned(), 0);
                // A written buffer, shared with the write, then handed out.
                let mut buf = file.alloc_dma_buffer(4096);
                buf.as_bytes_mut().fill(3);
                let buf = std::rc::Rc::new(buf);
                file.write_rc_at(buf.clone(), 4096).await.unwrap();
                let written = bytes_of_written(buf).slice(100..110);
                let seen = std::thread::spawn(move || written.iter().map(|b| *b as u32).sum::<u32>()).join().unwrap();
                assert_eq!(seen, 30);
                assert_eq!(release_returned(), 1, "the written buffer came home");
                file.close().await.unwrap();
                std::fs::remove_file(&path).unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
