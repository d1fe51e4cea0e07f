//! The hyper HTTP/1 server: a thin runner that accepts connections and hands
//! every request to [`Proxy::handle`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;

use super::Proxy;
use crate::config::Listen;

/// A bound listener: TCP or a unix socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(tokio::net::TcpListener),
    /// Unix socket (the file is created with mode 0600 and removed first if stale).
    Unix(tokio::net::UnixListener, PathBuf),
}

impl Listener {
    /// Binds `listen`.
    pub async fn bind(listen: &Listen) -> std::io::Result<Self> {
        match listen {
            Listen::Tcp(addr) => Ok(Self::Tcp(tokio::net::TcpListener::bind(addr).await?)),
            Listen::Unix(path) => {
                if path.exists() {
                    std::fs::remove_file(path)?;
                }
                let listener = tokio::net::UnixListener::bind(path)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                Ok(Self::Unix(listener, path.clone()))
            }
        }
    }

    /// The TCP address (useful after binding port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr().ok(),
            Self::Unix(..) => None,
        }
    }
}

impl Proxy {
    /// Serves connections from `listener` until `cancel` fires.
    pub async fn serve(self, listener: Listener, cancel: CancellationToken) -> std::io::Result<()> {
        loop {
            match &listener {
                Listener::Tcp(l) => {
                    let accepted = tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        a = l.accept() => a,
                    };
                    match accepted {
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            // As AWS's agent: answers never leave the local
                            // network segment (a router drops them).
                            let _ = stream.set_ttl(1);
                            self.spawn_connection(stream, cancel.clone());
                        }
                        Err(e) => accept_error(e).await,
                    }
                }
                Listener::Unix(l, _) => {
                    let accepted = tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        a = l.accept() => a,
                    };
                    match accepted {
                        Ok((stream, _)) => self.spawn_connection(stream, cancel.clone()),
                        Err(e) => accept_error(e).await,
                    }
                }
            }
        }
    }

    fn spawn_connection<S>(&self, stream: S, cancel: CancellationToken)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let this = this.clone();
                async move { Ok::<_, Infallible>(this.handle(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "proxy connection ended with an error");
                    }
                }
                () = cancel.cancelled() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
}

async fn accept_error(e: std::io::Error) {
    tracing::warn!(error = %e, "cannot accept a connection");
    // EMFILE and friends: do not spin.
    tokio::time::sleep(Duration::from_millis(50)).await;
}
