//! TEMPORARY STUB (not committed): compile-checks ddns.rs until the addr branch lands.
#![allow(dead_code)]
use crate::config::Ipv6Prefer;
use crate::error::{Error, Result};
use crate::http::{Family, HttpOptions};
use std::net::{IpAddr, Ipv6Addr};
pub struct AddrRequest<'a> {
    pub family: Family,
    pub interface: Option<&'a str>,
    pub ipv6_suffix: Option<Ipv6Addr>,
    pub prefer: Ipv6Prefer,
    pub urls: &'a [String],
}
pub struct Candidate {
    pub addr: IpAddr,
    pub source: String,
    pub kept: bool,
    pub reason: String,
}
pub struct Detection {
    pub addr: IpAddr,
    pub source: String,
    pub candidates: Vec<Candidate>,
    pub warnings: Vec<String>,
}
pub struct Detector;
impl Detector {
    pub fn new(_http: HttpOptions) -> Self {
        Detector
    }
    pub fn detect(&self, _req: &AddrRequest) -> Result<Detection> {
        Err(Error::Other("stub".into()))
    }
}
