//! Spreading independent pieces of work over threads, with results in piece
//! order so that nothing depends on which thread ran what.
//!
//! `std::thread::scope` and an atomic counter are all the joins need: the
//! pieces (slabs of time buckets, batches of streamed points) are many and of
//! similar size, so threads simply take the next one until none are left.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `f(0) .. f(count)`, computed on up to `threads` threads, in order.
pub(crate) fn map_pieces<T: Send>(count: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = threads.min(count).max(1);
    if threads == 1 {
        return (0..count).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<T>> = std::iter::repeat_with(|| None).take(count).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let piece = next.fetch_add(1, Ordering::Relaxed);
                        if piece >= count {
                            return done;
                        }
                        done.push((piece, f(piece)));
                    }
                })
            })
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(done) => {
                    for (piece, result) in done {
                        results[piece] = Some(result);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    results.into_iter().map(|r| r.expect("every piece was taken by a worker")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_piece_order() {
        for threads in [1, 2, 5] {
            assert_eq!(map_pieces(7, threads, |k| k * k), vec![0, 1, 4, 9, 16, 25, 36]);
        }
        assert!(map_pieces(0, 4, |k| k).is_empty());
    }
}
