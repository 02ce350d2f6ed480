//! What the attack tests (tests/serve.rs) and the attack load generator
//! (examples/load_serve.rs, which includes this file by path) both need: other
//! loopback "hosts" for the server's per-address limits, and the server's CPU time
//! and resident memory from /proc.

use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::FromRawFd;

/// Connects from another loopback address (127.0.0.N): a second "host" for
/// the per-address limits, without leaving the machine.
pub fn connect_from(src: Ipv4Addr, to: &str) -> std::io::Result<TcpStream> {
    connect_with(src, None, to)
}

/// Connects with a receive buffer of `rcvbuf` bytes set before the handshake,
/// so the window it advertises stays small: a client that reads slowly.
pub fn connect_with(src: Ipv4Addr, rcvbuf: Option<libc::c_int>, to: &str) -> std::io::Result<TcpStream> {
    let to: std::net::SocketAddrV4 = to.parse().map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let sa = |a: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(a).to_be() },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor we own; the sockaddr structs live across the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let s = TcpStream::from_raw_fd(fd);
        if let Some(v) = rcvbuf {
            let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &v as *const _ as *const libc::c_void, size);
        }
        let local = sa(src, 0);
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = sa(*to.ip(), to.port());
        if libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(s)
    }
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat; None when
/// it cannot be read (the process is gone).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised name; utime and stime are fields 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut f = rest.split_whitespace().skip(11);
    let ticks = f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// Resident memory of a process (VmRSS), KiB; None when it cannot be read.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()
}
