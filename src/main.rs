//! aliddns: an AliDNS DDNS client and GoEdge custom HTTP DNS bridge for routers.
//! The work lives in the modules; main only hands the arguments to the CLI.
#![deny(unsafe_op_in_unsafe_fn)]

mod addr;
mod alidns;
mod cli;
mod clock;
mod config;
mod ddns;
mod error;
mod goedge;
mod http;
mod httpd;
mod json;
mod log;
mod serve;
mod sign;
mod signal;
mod state;
mod status;
mod summary;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
mod tls_client;

/// The static builds otherwise get the C library's malloc from the toolchain, and with zig 0.17
/// (what scripts/build-router.sh installs) that is not musl's but zig's per-CPU free-list
/// allocator: it never unmaps small blocks, and maps a fresh slab whenever the two free lists it
/// looks at are empty or busy. `serve`'s reactor allocates each request and a worker frees it, so
/// freed blocks piled up on other lists and RSS grew without bound (docs/benchmarks.md, "Memory
/// soak"). dlmalloc (pure Rust, std's allocator on wasm) stays flat; it costs ~7 KB on mipsel.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// musl's `pthread_setname_np` names another thread by writing /proc/self/task/TID/comm, a
/// path it formats with `snprintf`: that alone links all of printf (~12 KB on mipsel). std only
/// ever names the calling thread (httpd's workers, each from inside itself), which is one
/// `prctl(PR_SET_NAME)`; so the static builds define the function, and musl's is not linked.
#[cfg(target_env = "musl")]
#[unsafe(no_mangle)]
extern "C" fn pthread_setname_np(thread: libc::pthread_t, name: *const libc::c_char) -> libc::c_int {
    // SAFETY: pthread_self and pthread_equal have no preconditions; prctl(PR_SET_NAME) reads
    // at most 16 bytes of the NUL-terminated name its caller (std) passes.
    unsafe {
        if libc::pthread_equal(thread, libc::pthread_self()) == 0 {
            return libc::ENOSYS;
        }
        if libc::prctl(libc::PR_SET_NAME, name as libc::c_ulong) == 0 {
            return 0;
        }
    }
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)
}

fn main() {
    let code = cli::main(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
