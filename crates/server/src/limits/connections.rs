//! The cap on concurrent connections, as a listener for `axum::serve`: at
//! most [`Limits::max_connections`](super::Limits::max_connections)
//! connections are served at once. Each accepted connection holds a
//! semaphore permit until it is dropped; while none is free the listener
//! does not accept, so further clients wait in the kernel's backlog (their
//! connection opens, their request waits) instead of being refused.
//!
//! A cap alone would let anyone take every place by opening connections
//! and sending nothing, or one byte a minute. So each connection also
//! closes itself when it goes unanswered for too long: see
//! [`CappedConnection`].

use super::Limits;
use axum::serve::Listener;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// A TCP listener that serves at most a fixed number of connections at once.
pub struct CappedListener {
    inner: TcpListener,
    places: Arc<Semaphore>,
    idle_timeout: Duration,
}

impl CappedListener {
    pub fn new(inner: TcpListener, limits: &Limits) -> Self {
        // 0 means no cap; the semaphore's maximum is far above any file
        // descriptor limit, so it never binds.
        let places = match limits.max_connections {
            0 => Semaphore::MAX_PERMITS,
            n => n.min(Semaphore::MAX_PERMITS),
        };
        Self {
            inner,
            places: Arc::new(Semaphore::new(places)),
            idle_timeout: limits.connection_idle_timeout(),
        }
    }
}

impl Listener for CappedListener {
    type Io = CappedConnection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // A place first, then the connection: without a place, new clients
        // stay queued in the kernel rather than being accepted and dropped.
        let place = match Arc::clone(&self.places).acquire_owned().await {
            Ok(place) => place,
            // The semaphore is never closed; if it were, serving uncapped is
            // better than serving nothing.
            Err(_closed) => {
                tracing::error!("the connection cap's semaphore was closed");
                return self.accept_without_place().await;
            }
        };
        // `Listener for TcpListener` retries accept errors (with a pause on
        // running out of file descriptors), so this always yields a stream.
        let (stream, address) = Listener::accept(&mut self.inner).await;
        (
            CappedConnection::new(stream, Some(place), self.idle_timeout),
            address,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl CappedListener {
    async fn accept_without_place(&mut self) -> (CappedConnection, SocketAddr) {
        let (stream, address) = Listener::accept(&mut self.inner).await;
        (
            CappedConnection::new(stream, None, self.idle_timeout),
            address,
        )
    }
}

/// An accepted connection holding its place under the cap until dropped.
///
/// It also fails (and so is closed by the server) when it goes unanswered
/// for `idle_timeout`, counted from the first byte of a request not yet
/// answered, or else from the last byte written:
/// - a connection that never sends anything, or a keep-alive connection
///   left idle, is closed `idle_timeout` after its last answer;
/// - a request trickled in slowly must be complete and answered within
///   `idle_timeout` of its first byte;
/// - a client that stops reading a download is closed `idle_timeout` after
///   the last byte it accepted.
///
/// A request being handled is never cut: handlers answer within the
/// request timeout, which is shorter than `idle_timeout`.
pub struct CappedConnection {
    stream: TcpStream,
    _place: Option<OwnedSemaphorePermit>,
    idle_timeout: Duration,
    last_write: Instant,
    /// When the first byte read since the last write arrived.
    unanswered_since: Option<Instant>,
    /// Wakes the connection's task at the deadline when it is waiting for I/O.
    alarm: Pin<Box<Sleep>>,
}

impl CappedConnection {
    fn new(stream: TcpStream, place: Option<OwnedSemaphorePermit>, idle_timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            stream,
            _place: place,
            idle_timeout,
            last_write: now,
            unanswered_since: None,
            alarm: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
        }
    }

    fn deadline(&self) -> Instant {
        self.unanswered_since.unwrap_or(self.last_write) + self.idle_timeout
    }

    fn timed_out(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "nothing answered on this connection for {:?}; closing it",
                self.idle_timeout
            ),
        )
    }

    /// Called when the stream is not ready: `Ready` with an error once the
    /// deadline has passed, else makes sure the alarm wakes the task by then.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        // The deadline only ever moves later, so the alarm may lag behind it:
        // when it rings early it is set again. That re-arms the timer once
        // per idle period instead of once per request on a busy connection.
        loop {
            if self.alarm.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let deadline = self.deadline();
            if Instant::now() >= deadline {
                return Poll::Ready(self.timed_out());
            }
            self.alarm.as_mut().reset(deadline);
        }
    }

    fn wrote(&mut self, bytes: usize) {
        if bytes > 0 {
            self.last_write = Instant::now();
            self.unanswered_since = None;
        }
    }
}

impl AsyncRead for CappedConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let now = Instant::now();
                    let first = *this.unanswered_since.get_or_insert(now);
                    // Bytes arriving do not extend the deadline: a request
                    // trickled in one byte at a time is still cut off.
                    if now >= first + this.idle_timeout {
                        return Poll::Ready(Err(this.timed_out()));
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.poll_deadline(cx).map(Err),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for CappedConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.wrote(n);
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.poll_deadline(cx).map(Err),
            other => other,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.wrote(n);
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.poll_deadline(cx).map(Err),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_flush(cx) {
            Poll::Pending => this.poll_deadline(cx).map(Err),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
