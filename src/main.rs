mod clock;
mod config;
mod error;
mod http;
mod sign;
fn main() {}
