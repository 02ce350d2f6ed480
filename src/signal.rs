//! The signals the long-running commands react to: SIGUSR1 asks `run` for a pass
//! now (the interface hotplug script sends it after a PPPoE redial), SIGTERM and
//! SIGINT ask `run` and `serve` for a clean stop.
//!
//! The handler only sets a flag and writes one byte to a pipe (the self-pipe
//! technique); [`wait`] sleeps in `poll(2)` on the pipe's other end, so a waiter
//! wakes the moment a signal arrives, whichever thread the kernel ran the handler
//! on, and costs nothing while it sleeps.

use std::os::fd::RawFd;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

static PASS_NOW: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);
/// The pipe's ends, -1 until [`install`] made it (or when it could not).
static WAKE_READ: AtomicI32 = AtomicI32::new(-1);
static WAKE_WRITE: AtomicI32 = AtomicI32::new(-1);
static PIPE: Once = Once::new();

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work here: atomics and write(2), with errno kept for
    // the code the signal interrupted.
    if sig == libc::SIGUSR1 {
        PASS_NOW.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
    let fd = WAKE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: errno is thread-local; the pointer is valid for this thread.
        let saved = unsafe { *libc::__errno_location() };
        // SAFETY: writing one byte from a live local to a descriptor we own. The pipe
        // is non-blocking: when it is full a wake-up is already pending.
        unsafe { libc::write(fd, (&raw const sig).cast(), 1) };
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = saved };
    }
}

/// Makes the non-blocking, close-on-exec wake-up pipe once per process.
fn make_pipe() {
    PIPE.call_once(|| {
        let mut fds = [-1 as RawFd; 2];
        // SAFETY: pipe2 writes two descriptors into the array on success.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } == 0 {
            WAKE_READ.store(fds[0], Ordering::SeqCst);
            WAKE_WRITE.store(fds[1], Ordering::SeqCst);
        } else {
            let e = std::io::Error::last_os_error();
            crate::log::warn(format!("cannot create the signal wake-up pipe ({e}); checking for signals every 200 ms"));
        }
    });
}

/// Installs [`on_signal`] for `signals` with `sigaction(2)` and explicit flags, so
/// the behaviour does not depend on which C library's `signal()` the binary links:
/// `SA_RESTART` resumes system calls the signal interrupted in other threads (a
/// worker's socket read) instead of failing them with `EINTR`; without
/// `SA_RESETHAND` the handler stays installed for the next signal; the mask is empty
/// because the handler is safe to nest.
fn install_for(signals: &[libc::c_int]) {
    make_pipe();
    // SAFETY: sigaction is plain data; zeroed is a valid starting value for every field.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `sa_mask` is a sigset_t owned by `action`.
    unsafe { libc::sigemptyset(&raw mut action.sa_mask) };
    for &sig in signals {
        // SAFETY: `action` is fully initialised and its handler only touches atomics
        // and write(2); the old action is not wanted.
        if unsafe { libc::sigaction(sig, &raw const action, std::ptr::null_mut()) } != 0 {
            let e = std::io::Error::last_os_error();
            crate::log::warn(format!("cannot install the handler for signal {sig}: {e}"));
        }
    }
}

/// Installs the handlers: SIGUSR1 asks for a pass now, SIGTERM/SIGINT for a clean stop.
pub fn install() {
    install_for(&[libc::SIGUSR1, libc::SIGTERM, libc::SIGINT]);
}

/// Whether a stop was requested.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Consumes a pending "pass now" request.
pub fn take_pass_request() -> bool {
    PASS_NOW.swap(false, Ordering::SeqCst)
}

/// Sleeps until a handled signal arrives or `timeout` passes (None: no limit).
/// Returns early on a signal only; callers then look at [`stop_requested`] and
/// [`take_pass_request`]. A signal that arrived before the call (after the caller
/// last looked at the flags) returns at once: its byte is still in the pipe.
pub fn wait(timeout: Option<Duration>) {
    let fd = WAKE_READ.load(Ordering::SeqCst);
    let deadline = timeout.map(|t| Instant::now() + t);
    if fd < 0 {
        // No pipe: fall back to checking the flags every 200 ms.
        let step = Duration::from_millis(200);
        std::thread::sleep(deadline.map_or(step, |d| d.saturating_duration_since(Instant::now()).min(step)));
        return;
    }
    let ms = deadline.map_or(-1, |d| {
        let left = d.saturating_duration_since(Instant::now());
        // Round up, so the caller is not woken a fraction of a millisecond early.
        i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
    });
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, exclusively borrowed for the call. EINTR (the signal
    // itself interrupting poll) simply returns: the flags are set either way.
    let n = unsafe { libc::poll(&raw mut pfd, 1, ms) };
    if n > 0 {
        drain(fd);
    }
}

/// Empties the pipe: several signals may have queued several bytes.
fn drain(fd: RawFd) {
    let mut buf = [0u8; 64];
    // SAFETY: reading into a local buffer of the given length from a non-blocking
    // descriptor we own; stops when it is empty (EAGAIN) or fails.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the flags and the pipe are per process, and parallel tests would
    // consume each other's wake-ups.
    #[test]
    fn wait_lasts_its_timeout_but_a_signal_wakes_it_at_once() {
        // Only SIGUSR1: the test harness keeps its own SIGINT/SIGTERM behaviour.
        install_for(&[libc::SIGUSR1]);
        let t = Instant::now();
        wait(Some(Duration::from_millis(30)));
        assert!(t.elapsed() >= Duration::from_millis(30), "{:?}", t.elapsed());

        let waiter = std::thread::spawn(|| {
            let t = Instant::now();
            while !take_pass_request() {
                assert!(t.elapsed() < Duration::from_secs(30), "SIGUSR1 never arrived");
                wait(Some(Duration::from_secs(30)));
            }
            t.elapsed()
        });
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: sending SIGUSR1, whose handler is installed, to this process.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) }, 0);
        let took = waiter.join().unwrap();
        assert!(took < Duration::from_secs(10), "woken by the signal, not the 30 s timeout: {took:?}");
        assert!(!stop_requested(), "SIGUSR1 is not a stop");
    }
}
