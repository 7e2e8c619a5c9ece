//! A BMC's listening socket: plain TCP or TLS, with the `unreachable` fault applied below
//! HTTP — a dead BMC does not answer 503, it answers nothing.
//!
//! Connections are accepted (and TLS handshakes run) on a task of their own and handed to
//! axum through a channel, so that one slow handshake never holds up the others.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::host::SimHostHandle;

/// How long a client gets to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A connection to a BMC. While the host's `unreachable` fault is set, reading fails, so the
/// HTTP server drops the connection without answering.
pub(crate) struct BmcIo {
    stream: Stream,
    host: SimHostHandle,
}

/// What both kinds of stream are.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl BmcIo {
    /// The stream, or the injected fault's error if the host is unreachable.
    fn open(&mut self) -> io::Result<Pin<&mut dyn Io>> {
        if self.host.unreachable() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "BMC unreachable (injected fault)",
            ));
        }
        Ok(match &mut self.stream {
            Stream::Plain(s) => Pin::new(s as &mut dyn Io),
            Stream::Tls(s) => Pin::new(s.as_mut() as &mut dyn Io),
        })
    }
}

impl AsyncRead for BmcIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().open() {
            Ok(s) => s.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for BmcIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().open() {
            Ok(s) => s.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().open() {
            Ok(s) => s.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().open() {
            Ok(s) => s.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// The accepted connections of one BMC, as axum takes them.
pub(crate) struct BmcListener {
    accepted: mpsc::Receiver<(BmcIo, SocketAddr)>,
    local: SocketAddr,
}

impl BmcListener {
    /// Starts accepting on `tcp` for `host` (through `tls` if given) until `stop` turns true.
    pub fn start(
        tcp: TcpListener,
        host: SimHostHandle,
        tls: Option<TlsAcceptor>,
        mut stop: watch::Receiver<bool>,
    ) -> io::Result<BmcListener> {
        let local = tcp.local_addr()?;
        let (tx, accepted) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (tcp_stream, peer) = tokio::select! {
                    r = tcp.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, then go on.
                            tracing::warn!(error = %e, "BMC accept");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = stopped(&mut stop) => return,
                };
                if host.unreachable() {
                    drop(tcp_stream);
                    continue;
                }
                let _ = tcp_stream.set_nodelay(true);
                let (tx, host) = (tx.clone(), host.clone());
                match &tls {
                    None => {
                        let io = BmcIo {
                            stream: Stream::Plain(tcp_stream),
                            host,
                        };
                        if tx.send((io, peer)).await.is_err() {
                            return;
                        }
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let hs = tokio::time::timeout(
                                HANDSHAKE_TIMEOUT,
                                acceptor.accept(tcp_stream),
                            );
                            match hs.await {
                                Ok(Ok(s)) => {
                                    let io = BmcIo {
                                        stream: Stream::Tls(Box::new(s)),
                                        host,
                                    };
                                    let _ = tx.send((io, peer)).await;
                                }
                                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        });
                    }
                }
            }
        });
        Ok(BmcListener { accepted, local })
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

impl axum::serve::Listener for BmcListener {
    type Io = BmcIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (BmcIo, SocketAddr) {
        match self.accepted.recv().await {
            Some(c) => c,
            // The acceptor stopped: so is the server, through its graceful shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
