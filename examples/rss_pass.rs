//! Peak RSS of one command, for scripts/rss-pass.sh: fork, exec, `wait4`, print
//! the child's `ru_maxrss`.
//!
//! ```text
//! rss_pass -- PROGRAM [ARG]...   prints "<maxrss KB> <exit code> <hwm KB> <anon KB> <file KB>"
//! rss_pass --floor               prints the peak RSS of a forked child that exits at once
//! ```
//! Linux carries the pre-exec peak of the forked child into `ru_maxrss`, so the parent
//! must be small (this program is; a Python parent is not). `--floor` shows how much
//! of any figure is the launcher's own: a figure at the floor says nothing.
//! The child's stdout goes to /dev/null; stderr is kept.
//!
//! Hwm, anon and file are the child's `VmHWM`, `RssAnon` and `RssFile` (/proc/PID/status)
//! as it exits, read while ptrace holds it at `PTRACE_EVENT_EXIT` (its memory is still
//! mapped): the peak, then heap, stacks and data against the pages of the executable
//! mapped from the page cache. Linux 6.2+ keeps RSS in per-CPU counters; `ru_maxrss`
//! is taken from their cached total, which lags by up to 32 pages per CPU, while
//! /proc/PID/status sums them exactly, so `VmHWM` can be the larger by up to 128 KB
//! per CPU the child ran on.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let floor = args.first().is_some_and(|a| a == "--floor");
    let argv: Vec<CString> = if floor {
        Vec::new()
    } else {
        let Some(rest) = args.split_first().filter(|(a, r)| *a == "--" && !r.is_empty()).map(|(_, r)| r) else {
            eprintln!("usage: rss_pass -- PROGRAM [ARG]... | rss_pass --floor");
            std::process::exit(2);
        };
        rest.iter().map(|a| CString::new(a.as_bytes()).expect("argument without NUL")).collect()
    };
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let devnull = c"/dev/null";
    // SAFETY: after fork the child only calls async-signal-safe functions (open,
    // dup2, execvp, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        eprintln!("rss_pass: fork: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    if pid == 0 {
        unsafe {
            if floor {
                libc::_exit(0);
            }
            // Stop at the exec, so the parent can ask for a stop at the exit.
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            let fd = libc::open(devnull.as_ptr(), libc::O_WRONLY);
            if fd >= 0 {
                libc::dup2(fd, 1);
            }
            libc::execvp(ptrs[0], ptrs.as_ptr());
            libc::_exit(127);
        }
    }
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut split = [0; 3];
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r != pid {
            eprintln!("rss_pass: wait4: {}", std::io::Error::last_os_error());
            std::process::exit(1);
        }
        if !libc::WIFSTOPPED(status) {
            break;
        }
        // The exec's SIGTRAP: ask for the exit stop. The exit stop: read the split.
        // Any other signal is passed on.
        let (sig, event) = (libc::WSTOPSIG(status), status >> 16);
        let pass_on = match (sig, event) {
            (libc::SIGTRAP, 0) => {
                unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, libc::PTRACE_O_TRACEEXIT) };
                0
            }
            (libc::SIGTRAP, libc::PTRACE_EVENT_EXIT) => {
                split = rss_split(pid);
                0
            }
            _ => sig,
        };
        unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, pass_on) };
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    let [hwm, anon, file] = split;
    println!("{} {code} {hwm} {anon} {file}", usage.ru_maxrss);
}

/// `VmHWM`, `RssAnon` and `RssFile` of a process, in KB.
fn rss_split(pid: libc::pid_t) -> [u64; 3] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        let line = status.lines().find_map(|l| l.strip_prefix(name)).unwrap_or_default();
        line.trim().trim_end_matches("kB").trim().parse().unwrap_or(0)
    };
    [field("VmHWM:"), field("RssAnon:"), field("RssFile:")]
}
