//! `pitcrew sandbox`: the GoKart sandbox on a fixed address, until Ctrl-C.

use std::path::PathBuf;

use clap::Args;
use tokio::net::TcpListener;

use tokio_util::sync::CancellationToken;

use super::{CliError, Outcome, exit};
use crate::receiver::{self, Receiver, ReceiverConfig};
use crate::sandbox;

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to serve the API on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The tenant (offers, partners, token) as YAML; built-in defaults otherwise.
    #[arg(long, value_name = "FILE")]
    pub sandbox_config: Option<PathBuf>,
    /// Where partners without their own `callback_url` send callbacks; without it, a receiver
    /// is started beside the sandbox on an ephemeral loopback port.
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
}

/// Serves until Ctrl-C or SIGTERM.
pub fn serve(args: SandboxArgs) -> Outcome {
    let config = crate::launch::sandbox_config(args.sandbox_config.as_deref())?;
    let (runtime, mut signals) = super::runtime_and_signals()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let infrastructure = |what: String| CliError::Infrastructure(what);
        let callback_url = match args.callback_url {
            Some(url) => url,
            None => {
                let receiver = Receiver::new(ReceiverConfig {
                    auth: Some(config.receiver_auth()),
                    ..ReceiverConfig::default()
                });
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .and_then(|l| receiver::serve(l, receiver, shutdown.clone()))
                    .map_err(|e| infrastructure(format!("cannot start the receiver: {e}")))?;
                listener.callback_url()
            }
        };
        let listener = TcpListener::bind(&args.listen)
            .await
            .map_err(|e| infrastructure(format!("cannot listen on {}: {e}", args.listen)))?;
        let handle = sandbox::serve(listener, config, callback_url.clone(), shutdown.clone())
            .map_err(|e| infrastructure(format!("cannot start the sandbox: {e}")))?;
        super::say(&format!("pitcrew sandbox: API on {}", handle.base_url()));
        super::say(&format!(
            "pitcrew sandbox: callbacks of partners without their own URL go to {}",
            crate::mask::mask(&callback_url)
        ));
        super::say("pitcrew sandbox: press Ctrl-C to stop");
        signals.next().await;
        shutdown.cancel();
        Ok(exit::PASSED)
    })
}
