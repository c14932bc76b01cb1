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
