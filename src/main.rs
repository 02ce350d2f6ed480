mod clock;
mod config;
mod error;
mod sign;
fn main() {}
