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

fn main() {
    let code = cli::main(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
