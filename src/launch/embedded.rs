//! `--target sandbox`: the embedded sandbox and a receiver that takes only its partners'
//! secrets (or, with `--endpoint`, the publisher's endpoint), on ephemeral loopback ports; and
//! the sandbox's outbox, asked in process.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Endpoint, LaunchError, Observed, Started};
use crate::delivery::Key;
use crate::platform::outbox::{Answer, Outbox, Pending};
use crate::platform::{HttpPlatform, Profile};
use crate::receiver::{self, Receiver, ReceiverConfig};
use crate::run::TargetClock;
use crate::sandbox::{self, Filed, SandboxConfig, SandboxHandle};

/// The embedded sandbox's outbox.
struct Embedded {
    sandbox: SandboxHandle,
    /// With pitcrew's receiver, nothing reads a final case's sandbox records again; with
    /// `--endpoint`, its settling reads the sandbox's callback log: the sandbox must keep it.
    forgets: bool,
}

impl Outbox for Embedded {
    fn pending<'a>(&'a self, key: &'a Key) -> Answer<'a> {
        let filed = match key {
            Key::Conversion(id) => Filed::under(Some(id), None),
            Key::Click(id) => Filed::under(None, Some(id)),
            // The sandbox files its postbacks under their conversion.
            Key::Postback(_) => None,
        };
        // An id that is not one of the sandbox's has nothing pending.
        let next = filed.and_then(|f| self.sandbox.next_due(f));
        // Reading pitcrew's receiver in this process costs nothing: no count is needed.
        let nothing = Pending::Nothing { made: None };
        Box::pin(async move { next.map_or(nothing, Pending::Due) })
    }

    fn forget(&self, click: Option<&str>, conversion: Option<&str>) {
        if self.forgets {
            self.sandbox.forget(click, conversion);
        }
    }
}

/// Starts the embedded sandbox (calling back `endpoint`, else pitcrew's receiver).
pub(super) async fn start(
    mut config: SandboxConfig,
    endpoint: Option<Endpoint>,
    shutdown: CancellationToken,
    rate: Option<crate::platform::pace::Rate>,
) -> Result<Started, LaunchError> {
    if let Some(endpoint) = &endpoint {
        config.call_back(&endpoint.url, endpoint.header.clone());
    }
    for secret in config.secrets() {
        crate::mask::register(&secret);
    }
    let clock = TargetClock {
        minute: config.minute,
    };
    let (callback_url, observed) = match &endpoint {
        Some(endpoint) => (endpoint.url.clone(), Observed::Log),
        None => receive(&config, shutdown.clone()).await?,
    };
    let token = config.token.clone();
    let sandbox = TcpListener::bind("127.0.0.1:0")
        .await
        .and_then(|l| sandbox::serve(l, config, callback_url.clone(), shutdown))
        .map_err(|e| {
            LaunchError::Infrastructure(format!("cannot start the sandbox on 127.0.0.1: {e}"))
        })?;
    let mut profile = Profile {
        rate,
        ..Profile::sandbox(sandbox.base_url())
    };
    if let Some(t) = token {
        profile
            .headers
            .push(("Authorization".to_string(), format!("ApiToken {t}")));
    }
    let label = format!(
        "sandbox ({}, callbacks to {})",
        sandbox.base_url(),
        crate::mask::mask(&callback_url)
    );
    let receives = matches!(observed, Observed::Receiver(_));
    Ok(Started {
        platform: Arc::new(HttpPlatform::new(profile)?),
        outbox: Arc::new(Embedded {
            sandbox,
            forgets: receives,
        }),
        observed,
        label,
        clock,
        callback_url: receives.then_some(callback_url),
    })
}

/// pitcrew's receiver for the embedded sandbox's partners, taking only their secrets: where
/// they post, and how the run sees what they posted.
async fn receive(
    config: &SandboxConfig,
    shutdown: CancellationToken,
) -> Result<(String, Observed), LaunchError> {
    let receiver = Receiver::new(ReceiverConfig {
        auth: Some(config.receiver_auth()),
        ..ReceiverConfig::default()
    });
    let handle = TcpListener::bind("127.0.0.1:0")
        .await
        .and_then(|l| receiver::serve(l, receiver.clone(), shutdown))
        .map_err(|e| {
            LaunchError::Infrastructure(format!("cannot start the receiver on 127.0.0.1: {e}"))
        })?;
    Ok((
        handle.callback_url(),
        Observed::Receiver(Arc::new(receiver)),
    ))
}
