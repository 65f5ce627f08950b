//! A dependency that goes away and comes back, as a test decides: a relay in front of a real
//! server (PostgreSQL over TCP, the Docker Engine over its unix socket) that passes bytes
//! both ways untouched until [`Outage::cut`], which severs every open connection and refuses
//! new ones (they are closed as soon as accepted), until [`Outage::restore`]. To the process
//! under test that is the server restarting or its socket becoming unreachable; the server
//! itself, which other tests share, is never touched.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::watch;

/// Where a relay listens or what it relays to.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Tcp(String),
    Unix(PathBuf),
}

/// A relay that can be cut; stopped when dropped.
pub struct Outage {
    /// Where the process under test should connect instead of the real server.
    pub listen: Endpoint,
    up: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Outage {
    /// A relay on a free loopback port to a TCP server.
    pub async fn tcp(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (up, _) = watch::channel(true);
        let up = Arc::new(up);
        let (target, state) = (target.to_owned(), up.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = target.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    if !*state.borrow() {
                        return;
                    }
                    if let Ok(server) = TcpStream::connect(&target).await {
                        pipe(client, server, state.subscribe()).await;
                    }
                });
            }
        });
        Outage {
            listen: Endpoint::Tcp(addr),
            up,
            task,
        }
    }

    /// A relay on a unix socket at `listen` to the unix socket `target` (the Docker Engine's).
    pub fn unix(listen: &Path, target: &Path) -> Self {
        let _ = std::fs::remove_file(listen);
        let listener = UnixListener::bind(listen).expect("bind the unix socket");
        let (up, _) = watch::channel(true);
        let up = Arc::new(up);
        let (target, state) = (target.to_owned(), up.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = target.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    if !*state.borrow() {
                        return;
                    }
                    if let Ok(server) = UnixStream::connect(&target).await {
                        pipe(client, server, state.subscribe()).await;
                    }
                });
            }
        });
        Outage {
            listen: Endpoint::Unix(listen.to_owned()),
            up,
            task,
        }
    }

    /// Severs every connection and refuses new ones until [`Outage::restore`].
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }

    /// `host:port` of a TCP relay.
    pub fn addr(&self) -> &str {
        match &self.listen {
            Endpoint::Tcp(a) => a,
            Endpoint::Unix(_) => panic!("a unix-socket relay has no TCP address"),
        }
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
        if let Endpoint::Unix(path) = &self.listen {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Bytes both ways until either side closes or the relay is cut.
async fn pipe<A, B>(mut client: A, mut server: B, mut up: watch::Receiver<bool>)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    if !*up.borrow_and_update() {
        return;
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}
