//! `pitcrew sandbox`: the GoKart sandbox on a fixed address, until Ctrl-C.

use std::path::PathBuf;

use clap::Args;
use tokio::net::TcpListener;

use tokio_util::sync::CancellationToken;

use super::{exit, fail};
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

/// Serves until Ctrl-C.
pub fn serve(args: SandboxArgs) -> u8 {
    let config = match super::sandbox_config(args.sandbox_config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let receiver = Receiver::new(ReceiverConfig {
            auth: Some(config.receiver_auth()),
            ..ReceiverConfig::default()
        });
        let callback_url = match args.callback_url {
            Some(url) => url,
            None => {
                let listener = match TcpListener::bind("127.0.0.1:0").await {
                    Ok(l) => l,
                    Err(e) => {
                        return fail(
                            exit::INFRASTRUCTURE,
                            format!("cannot start the receiver: {e}"),
                        );
                    }
                };
                match receiver::serve(listener, receiver, shutdown.clone()) {
                    Ok(h) => h.callback_url(),
                    Err(e) => {
                        return fail(
                            exit::INFRASTRUCTURE,
                            format!("cannot start the receiver: {e}"),
                        );
                    }
                }
            }
        };
        let listener = match TcpListener::bind(&args.listen).await {
            Ok(l) => l,
            Err(e) => {
                return fail(
                    exit::INFRASTRUCTURE,
                    format!("cannot listen on {}: {e}", args.listen),
                );
            }
        };
        let handle = match sandbox::serve(listener, config, callback_url.clone(), shutdown.clone())
        {
            Ok(h) => h,
            Err(e) => return fail(exit::INFRASTRUCTURE, e),
        };
        super::say(&format!("pitcrew sandbox: API on {}", handle.base_url()));
        super::say(&format!(
            "pitcrew sandbox: callbacks of partners without their own URL go to {callback_url}"
        ));
        super::say("pitcrew sandbox: press Ctrl-C to stop");
        super::run::signal().await;
        shutdown.cancel();
        exit::PASSED
    })
}
