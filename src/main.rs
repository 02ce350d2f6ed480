mod alidns;
mod clock;
mod config;
mod error;
mod http;
mod log;
mod sign;
fn main() {}
