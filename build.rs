//! Records the target triple so `aliddns --version` can say which build it is.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=ALIDDNS_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
