//! The process's heap. The operator's memory is mostly its caches: many small objects that
//! live long (a settled restore point stays cached for as long as it exists), built from large
//! short-lived ones (each page of a watch's first list). glibc's allocator, as configured by
//! default, keeps much of the freed memory resident: one arena per thread that allocated, and
//! free pages inside an arena are returned only on request. Measured with 10,000 cached
//! restore points (`e2e/BENCHMARKS.md`): 87 MiB resident by default, 72 MiB with one arena,
//! 68 MiB once the free pages are returned as well.
//!
//! On other C libraries both functions do nothing.

/// Uses one malloc arena for every thread. Call it first thing, before any thread starts: the
/// operator does little in parallel (two cores at most), so the lock matters less than the
/// memory each further arena keeps.
pub fn use_one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// glibc's `M_ARENA_MAX` (malloc.h).
        const M_ARENA_MAX: std::ffi::c_int = -8;
        extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        // SAFETY: mallopt only sets an allocator parameter; no thread allocates yet. Refused
        // (it returns 0), the allocator keeps its default arenas, which is only more memory.
        unsafe {
            mallopt(M_ARENA_MAX, 1);
        }
    }
}

/// Returns the heap's free pages to the system (glibc's `malloc_trim(0)`): after the caches'
/// first lists, and every [`RETURN_FREE_EVERY`] after that (a burst of runs leaves free pages
/// too).
pub fn return_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim takes the allocator's own locks; it is safe at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// How often the free pages are returned while the operator runs (it takes well under a
/// millisecond, and makes no request).
pub const RETURN_FREE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
