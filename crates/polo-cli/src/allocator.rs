//! glibc's allocator settings for `polo serve`.
//!
//! glibc gives every thread that allocates concurrently an arena of its own
//! (up to eight per core) and keeps what is freed in them for reuse. A
//! server whose blocking threads come and go (each request's store read runs
//! on one) therefore ended up holding the high-water mark of every arena:
//! measured on the life fixture, the heap stayed at 21.8 MB after a few
//! page loads, against 11.0 MB with two arenas and fixed trim and mmap
//! thresholds (the thresholds otherwise grow after large frees, so big
//! buffers stop going back to the system). The settings are environment
//! variables glibc reads when a program starts, so `polo serve` re-executes
//! itself with them, once, when none of them is set: the process keeps its
//! id, arguments and open files. Setting any of them yourself turns this
//! off (and yours apply). Elsewhere than glibc on Linux this does nothing.
//!
//! Those settings are not enough after a large catch-up: the timeline
//! worker's recomputation of an imported history frees tens of megabytes in
//! holes below live allocations, and glibc returns memory to the system only
//! from the top of a heap. The server then stayed at ~45 MB of heap it did
//! not use (measured: `malloc_trim(0)`, called from gdb, took it to 5.8 MB
//! at once). So [`spawn_releaser`] asks glibc to give back whole free pages
//! (`malloc_trim`, which since glibc 2.8 madvises them away in every arena)
//! each time the process goes quiet after some work. That call is the
//! workspace's one `unsafe` block: a foreign function with no arguments
//! that point anywhere, which glibc serialises with every other allocator
//! call.

use std::time::{Duration, Instant};

/// What `polo serve` runs with unless the environment says otherwise.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const SETTINGS: [(&str, &str); 3] =
    [("MALLOC_ARENA_MAX", "2"), ("MALLOC_TRIM_THRESHOLD_", "131072"), ("MALLOC_MMAP_THRESHOLD_", "131072")];

/// Re-executes this process with [`SETTINGS`] when none is set. Returns
/// only when it did not: the settings were there, or the binary could not be
/// executed again (say it was replaced on disk by an upgrade), in which case
/// the server runs with glibc's defaults.
pub fn tune_for_serving() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if SETTINGS.iter().any(|(name, _)| std::env::var_os(name).is_some()) {
            return;
        }
        let Ok(exe) = std::env::current_exe() else { return };
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        let error = command.args(args).envs(SETTINGS).exec();
        eprintln!("polo: could not restart with the allocator settings ({error}); going on with glibc's defaults");
    }
}

/// How often [`spawn_releaser`] looks at how busy the process was.
pub const LOOK_EVERY: Duration = Duration::from_secs(5);
/// At most this much CPU time (in the kernel's 1/100 s ticks) used by the
/// whole process over [`LOOK_EVERY`] counts as quiet: 1 % of one core. A
/// phone posting every few seconds stays below it; an import, a catch-up or
/// a page's burst of API calls does not.
const QUIET_TICKS: u64 = 5;

/// Whether to give memory back now: the last [`LOOK_EVERY`] was quiet, and
/// the process did some work since the last release (so an idle server
/// trims once, not every few seconds). Trimming only when quiet keeps the
/// cost off busy moments: pages given back are faulted in again, zeroed,
/// when the next allocation reuses them, which a request in full flow would
/// pay for.
fn release_due(cpu_at_last_look: u64, cpu_now: u64, cpu_at_last_release: Option<u64>) -> bool {
    let quiet = cpu_now.saturating_sub(cpu_at_last_look) <= QUIET_TICKS;
    let worked_since = cpu_at_last_release.is_none_or(|at| cpu_now.saturating_sub(at) > QUIET_TICKS);
    quiet && worked_since
}

/// The CPU time this process has used, user and system, in ticks of
/// 1/100 s (`/proc/self/stat`, fields 14 and 15).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let mut fields = stat.rsplit_once(") ")?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Starts a thread that gives free memory back ([`release_free_memory`])
/// whenever the process has gone quiet after some work: within
/// [`LOOK_EVERY`] to twice that of an import, a catch-up or browsing ending.
/// Elsewhere than glibc on Linux it starts nothing: the other allocators
/// polo is built with (musl's, the macOS and Windows ones) give memory back
/// themselves.
pub fn spawn_releaser() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let started = std::thread::Builder::new().name("polo-release-memory".into()).spawn(|| {
        let Some(mut at_last_look) = cpu_ticks() else { return };
        let mut at_last_release = None;
        loop {
            std::thread::sleep(LOOK_EVERY);
            let Some(now) = cpu_ticks() else { return };
            if release_due(at_last_look, now, at_last_release) {
                let started = Instant::now();
                let released = release_free_memory();
                tracing::debug!(released, took_us = started.elapsed().as_micros(), "gave free heap pages back");
                at_last_release = Some(now);
            }
            at_last_look = now;
        }
    });
    if let Err(error) = started {
        tracing::warn!(%error, "cannot start the thread that gives free memory back; the heap keeps its peak");
    }
}

/// Asks glibc to return every whole free page of its heaps to the system.
/// Returns whether it released anything. Does nothing elsewhere.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() -> bool {
    // SAFETY: `malloc_trim` takes a size, not a pointer, touches only the
    // allocator's own state, and is MT-Safe (glibc locks each arena it trims).
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Asks glibc to return every whole free page of its heaps to the system.
/// Returns whether it released anything. Does nothing elsewhere.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_given_back_once_per_quiet_spell_after_work() {
        // Busy: 40 ticks in the last look.
        assert!(!release_due(100, 140, None));
        // Quiet after work never released: release.
        assert!(release_due(140, 142, None));
        // Still quiet, nothing done since that release: leave it.
        assert!(!release_due(142, 144, Some(142)));
        // A burst, then quiet again: release again.
        assert!(!release_due(144, 180, Some(142)));
        assert!(release_due(180, 181, Some(142)));
        // A trickle that never adds up to more than the quiet threshold since the release.
        assert!(!release_due(181, 183, Some(181)));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_process_cpu_time_is_read_and_grows() {
        let before = cpu_ticks().expect("/proc/self/stat");
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(cpu_ticks().expect("/proc/self/stat") > before, "300 ms of spinning used no CPU time");
    }

    /// A large block freed below a live one is a hole glibc keeps; a trim
    /// gives it back, which the process's resident memory shows.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn a_trim_gives_back_the_pages_of_a_freed_hole() {
        fn resident_kb() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
            let line = status.lines().find(|l| l.starts_with("RssAnon:")).expect("RssAnon");
            line.split_whitespace().nth(1).and_then(|kb| kb.parse().ok()).expect("a number of kB")
        }
        // Many small blocks (below the mmap threshold, so from the heap),
        // touched so they are resident, then all but the last freed.
        let mut blocks: Vec<Vec<u8>> = (0..4096).map(|_| vec![1u8; 16 * 1024]).collect();
        let keep = blocks.pop();
        release_free_memory();
        let before_free = resident_kb();
        drop(blocks);
        let after_free = resident_kb();
        assert!(release_free_memory(), "a 64 MiB hole was not released");
        let after_trim = resident_kb();
        drop(keep);
        // Other tests' threads allocate too, so compare with room to spare:
        // the trim must take back most of the 64 MiB the free left resident.
        assert!(
            after_trim + 32 * 1024 < after_free,
            "before free {before_free} kB, after free {after_free} kB, after trim {after_trim} kB"
        );
    }
}
