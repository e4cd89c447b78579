//! A TCP proxy in front of the test's MongoDB that a test can take down or make hang.
//!
//! Down cuts every connection and refuses new ones, as a crashed or partitioned server would.
//! Stalled keeps every connection open and forwards nothing more from the application, as a
//! server that accepts and then never answers would; a stalled command does that only to the
//! connection that sends it, from that command on.

use mongodb::bson::Document;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::mongodb_uri;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    Down,
    Stalled,
    /// The first `command` sent for `collection` (e.g. `update` on `sessions`) never arrives.
    StallCommand {
        command: &'static str,
        collection: &'static str,
    },
}

pub struct MongoProxy {
    port: u16,
    mode: watch::Sender<Mode>,
}

impl MongoProxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, watcher) = watch::channel(Mode::Up);
        let target = target();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if *watcher.borrow() == Mode::Down {
                    continue; // dropped: the connection is refused
                }
                tokio::spawn(forward(inbound, target.clone(), watcher.clone()));
            }
        });
        Self { port, mode }
    }

    /// The test server's URI with the proxy in place of its host.
    pub fn uri(&self) -> String {
        let original = mongodb_uri();
        let rest = original
            .strip_prefix("mongodb://")
            .expect("a mongodb:// URI");
        let (credentials, rest) = match rest.rsplit_once('@') {
            Some((credentials, rest)) => (format!("{credentials}@"), rest),
            None => (String::new(), rest),
        };
        let tail = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
        let tail = if tail.is_empty() { "/" } else { tail };
        let separator = if tail.contains('?') { "&" } else { "?" };
        // directConnection: talk to this address only, never to hosts a replica set announces.
        format!(
            "mongodb://{credentials}127.0.0.1:{}{tail}{separator}directConnection=true",
            self.port
        )
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

/// One connection: the application's messages go through one by one (so they can be held), the
/// server's answers as a byte stream.
async fn forward(inbound: TcpStream, target: String, mut mode: watch::Receiver<Mode>) {
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let (mut from_app, mut to_app) = inbound.into_split();
    let (mut from_server, mut to_server) = outbound.into_split();
    let watched = mode.clone();
    let upstream = async move {
        while let Some(message) = read_message(&mut from_app).await {
            if holds(*watched.borrow(), &message) {
                std::future::pending::<()>().await;
            }
            if to_server.write_all(&message).await.is_err() {
                return;
            }
        }
    };
    let downstream = tokio::io::copy(&mut from_server, &mut to_app);
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
        _ = mode.wait_for(|mode| *mode == Mode::Down) => {}
    }
}

/// One wire-protocol message (its length comes first), or `None` at the end of the stream.
async fn read_message(from: &mut OwnedReadHalf) -> Option<Vec<u8>> {
    let mut length = [0u8; 4];
    from.read_exact(&mut length).await.ok()?;
    let total = usize::try_from(i32::from_le_bytes(length)).ok()?;
    let mut message = length.to_vec();
    message.resize(total.max(4), 0);
    from.read_exact(&mut message[4..]).await.ok()?;
    Some(message)
}

fn holds(mode: Mode, message: &[u8]) -> bool {
    match mode {
        Mode::Up | Mode::Down => false,
        Mode::Stalled => true,
        Mode::StallCommand {
            command,
            collection,
        } => command_of(message)
            .is_some_and(|(name, target)| name == command && target.as_deref() == Some(collection)),
    }
}

/// The command of an `OP_MSG` (opCode 2013) and the collection it names: the first field of its
/// body section (kind 0), which starts after the 16-byte header and the 4 flag bytes.
fn command_of(message: &[u8]) -> Option<(String, Option<String>)> {
    const OP_MSG: i32 = 2013;
    let op_code = i32::from_le_bytes(message.get(12..16)?.try_into().ok()?);
    if op_code != OP_MSG || *message.get(20)? != 0 {
        return None;
    }
    let body = Document::from_reader(message.get(21..)?).ok()?;
    let (name, value) = body.iter().next()?;
    Some((name.clone(), value.as_str().map(str::to_owned)))
}

/// host:port of the test server.
pub fn target() -> String {
    let uri = mongodb_uri();
    let rest = uri.strip_prefix("mongodb://").expect("a mongodb:// URI");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let end = rest.find(['/', '?', ',']).unwrap_or(rest.len());
    rest[..end].to_owned()
}
