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
mod http;
mod httpd;
mod log;
mod serve;
mod sign;
mod signal;
mod state;
mod status;
mod uci;

fn main() {
    let code = cli::main(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
