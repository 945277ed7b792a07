//! Ctrl-C and SIGTERM, caught from the moment a command has its runtime: one that comes while a
//! large plan loads, or before a server's first wait, is kept for the command to act on, never
//! the default end of the process with no report and no output.

use tokio::runtime::Runtime;

/// The process's Ctrl-C and SIGTERM, caught since [`Signals::catch`].
pub struct Signals {
    #[cfg(unix)]
    caught: Option<[tokio::signal::unix::Signal; 2]>,
}

impl Signals {
    /// Catches both from now on (`runtime` drives them). When they cannot be caught, they keep
    /// their default effect: they end the process.
    pub fn catch(runtime: &Runtime) -> Signals {
        let _entered = runtime.enter();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let caught = signal(SignalKind::interrupt())
                .and_then(|int| Ok([int, signal(SignalKind::terminate())?]))
                .ok();
            Signals { caught }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Whether one came already, without waiting for one.
    pub fn came(&mut self) -> bool {
        #[cfg(unix)]
        if let Some(caught) = &mut self.caught {
            let mut seen = std::task::Context::from_waker(std::task::Waker::noop());
            return caught.iter_mut().any(|s| s.poll_recv(&mut seen).is_ready());
        }
        false
    }

    /// Resolves at the next one; never when they could not be caught.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        {
            let Some([int, term]) = &mut self.caught else {
                return std::future::pending().await;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
