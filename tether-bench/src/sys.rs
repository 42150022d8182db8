//! Process-level measurement: a counting allocator, RSS, the open-file
//! limit and CPU affinity.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::Pid;

/// Counts live heap bytes, but only once [`enable_heap_counting`] was
/// called: the benchmark processes that measure speed never pay for the
/// shared counter (a contended atomic on every allocation would slow the
/// very code being measured); only the memory server turns it on.
pub struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

/// Count one allocation (or reallocation) of `size` bytes.
fn counted(size: usize) {
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    ALLOCATED.fetch_add(size as u64, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the wrapper only
// adds to or subtracts from a counter, never touches the memory itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
            counted(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
            counted(layout.size());
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
            counted(new_size);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        System.dealloc(ptr, layout)
    }
}

/// Start counting. Only differences between two readings mean anything
/// (blocks allocated before this call are subtracted when freed).
pub fn enable_heap_counting() {
    COUNTING.store(true, Ordering::SeqCst);
}

/// Live heap bytes counted so far (see [`enable_heap_counting`]).
pub fn heap_live() -> i64 {
    LIVE.load(Ordering::Relaxed) as i64
}

/// Allocations (reallocations included) and bytes requested so far,
/// while counting (see [`enable_heap_counting`]).
pub fn allocations() -> (u64, u64) {
    (
        ALLOCS.load(Ordering::Relaxed),
        ALLOCATED.load(Ordering::Relaxed),
    )
}

/// Resident set size of process `pid` (0: this process) in bytes, from
/// `/proc/PID/statm`.
pub fn rss_bytes(pid: u32) -> u64 {
    let path = if pid == 0 {
        "/proc/self/statm".to_string()
    } else {
        format!("/proc/{pid}/statm")
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let pages: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // x86_64 Linux: 4 KiB pages.
    pages * 4096
}

/// Raise the soft open-file limit to the hard limit; returns the new soft
/// limit.
pub fn raise_nofile() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

/// How many CPUs this process may run on.
pub fn allowed_cpus() -> usize {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&i| set.is_set(i).unwrap_or(false))
            .count(),
        Err(_) => 0,
    }
}

/// Pin this thread, and so every thread and process it starts later, to
/// CPU 0 (what `taskset -c 0` does from outside).
pub fn pin_to_cpu0() -> bool {
    let mut set = CpuSet::new();
    if set.set(0).is_err() {
        return false;
    }
    sched_setaffinity(Pid::from_raw(0), &set).is_ok()
}

fn timeval_secs(t: nix::sys::time::TimeVal) -> f64 {
    t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6
}

/// CPU seconds (user + system) used by this process so far, all threads.
pub fn cpu_self() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| timeval_secs(u.user_time()) + timeval_secs(u.system_time()))
        .unwrap_or(0.0)
}

/// CPU seconds used by waited-for children (and their waited-for children).
pub fn cpu_children() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| timeval_secs(u.user_time()) + timeval_secs(u.system_time()))
        .unwrap_or(0.0)
}

/// CPU seconds used so far by process `pid`, from `/proc/PID/stat`
/// (utime + stime, in clock ticks of 10 ms).
pub fn cpu_of(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

/// Busy CPU seconds of the whole machine so far (every process, every
/// CPU), from `/proc/stat`; to see how much others used during a run.
pub fn cpu_machine() -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return 0.0;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: f64 = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| v.get(i))
        .sum();
    busy / 100.0
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}
