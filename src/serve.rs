//! Placeholder for the GoEdge custom HTTP DNS bridge (being written on the `serve` branch).

use crate::alidns::Client;
use crate::config::Config;
use crate::error::{Error, Result};
use std::sync::Arc;

/// Serves the GoEdge custom HTTP DNS protocol until the process is stopped.
pub fn run(_cfg: &Config, _client: Arc<Client>, _listen: Option<String>) -> Result<()> {
    Err(Error::Usage("serve is not available in this build yet".into()))
}
