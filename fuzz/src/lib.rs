//! What every fuzz target shares: the allocation limit.
//!
//! The targets are built without a sanitizer (`cargo fuzz run -s none`: the
//! code they reach has no `unsafe`, and the shared cores run twice as many executions
//! without ASan), and libFuzzer's own `-malloc_limit_mb` needs a sanitizer's
//! malloc hooks. So this allocator enforces the limit itself, exactly: an
//! allocation that would bring the heap over [`LIMIT_BYTES`] (one large
//! allocation, or everything live at once) prints what was asked for and
//! aborts, which libFuzzer reports as a crash and saves as an artifact.
//! `-rss_limit_mb` is passed as well (fuzz/run.sh), as a second net.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use polo_formats;
#[cfg(feature = "ingest")]
pub use polo_server;

/// Most heap the code under test may hold at once: 128 MiB.
pub const LIMIT_BYTES: usize = 128 << 20;

/// The bytes live on the heap.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// [`System`], refusing to go over [`LIMIT_BYTES`].
pub struct Limited;

#[cold]
fn over_limit(asked: usize, live: usize) -> ! {
    // No allocation here: the message is written from a stack buffer.
    let mut buf = [0u8; 160];
    let mut out = &mut buf[..];
    let _ = write!(
        out,
        "==polo-fuzz== allocation of {asked} bytes with {live} bytes live is over the limit of {LIMIT_BYTES} bytes\n"
    );
    let left = out.len();
    let _ = std::io::stderr().write_all(&buf[..buf.len() - left]);
    std::process::abort();
}

fn reserve(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed);
    if size > LIMIT_BYTES || live + size > LIMIT_BYTES {
        over_limit(size, live);
    }
}

// SAFETY: every call is forwarded to `System` unchanged; the counter only
// observes sizes.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        reserve(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        reserve(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            reserve(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Limited = Limited;
