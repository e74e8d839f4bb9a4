//! The metrics endpoint (`--metrics-listen`): a minimal HTTP/1.1 server on
//! shard 0's executor. `GET /metrics` gathers one snapshot per shard over the
//! mesh and renders them; `GET /health` answers 200 only when every shard is
//! ready. One request per connection (answered with `Connection: close`), a
//! bounded request head, a read deadline and a cap on concurrent scrapes, so a
//! slow or hostile client costs a few KiB and never blocks the shard.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use super::exposition::{self, Health};
use super::snapshot::{Collect, ShardSnapshot};
use crate::handlers::ShardContext;
use crate::network::listener::accept_until;
use crate::shard::fanout::run_on;
use crate::shard::watchdog::Heartbeats;

/// A request head larger than this is refused (a scrape's is under 300 bytes).
const HEAD_BYTES_MAX: usize = 8 * 1024;
/// A client that has not sent its whole request head by then is dropped.
const READ_DEADLINE: Duration = Duration::from_secs(5);
/// How long a scrape waits for a shard's snapshot (a shard still recovering its
/// partitions answers late): past it, that shard is left out of the page.
const SHARD_DEADLINE: Duration = Duration::from_secs(2);
const CONNECTIONS_MAX: usize = 16;

pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    Ok(TcpListener::bind(addr)?)
}

/// Accept scrapes until `stop` fires.
pub async fn serve(
    shard: Rc<ShardContext>,
    listener: TcpListener,
    beats: Arc<Heartbeats>,
    stop: event_listener::EventListener,
) {
    let open = Rc::new(std::cell::Cell::new(0usize));
    let mut stop = stop;
    while let Some(stream) = accept_until(&listener, &mut stop, "metrics").await {
        if open.get() >= CONNECTIONS_MAX {
            tracing::warn!(
                limit = CONNECTIONS_MAX,
                "metrics endpoint: too many connections; closing one"
            );
            continue;
        }
        open.set(open.get() + 1);
        let (shard, beats, open) = (shard.clone(), beats.clone(), open.clone());
        glommio::spawn_local(async move {
            let peer = stream.peer_addr().ok();
            if let Err(reason) = answer(&shard, &beats, stream).await {
                tracing::info!(?peer, %reason, "metrics endpoint: request dropped");
            }
            open.set(open.get() - 1);
        })
        .detach();
    }
}

async fn answer(shard: &Rc<ShardContext>, beats: &Heartbeats, mut stream: TcpStream) -> Result<(), String> {
    let head = future::or(read_head(&mut stream), async {
        glommio::timer::sleep(READ_DEADLINE).await;
        Err("no complete request head in time".to_string())
    })
    .await?;
    let (status, content_type, body) = route(shard, beats, &head).await;
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(response.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(body.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.close().await.map_err(|e| e.to_string())
}

/// The request line and headers, up to the blank line.
async fn read_head(stream: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the request head ended".into());
        }
        head.extend_from_slice(&chunk[..n]);
        if head.len() > HEAD_BYTES_MAX {
            return Err(format!("request head over {HEAD_BYTES_MAX} bytes"));
        }
    }
    String::from_utf8(head).map_err(|_| "request head is not UTF-8".to_string())
}

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn route(
    shard: &Rc<ShardContext>,
    beats: &Heartbeats,
    head: &str,
) -> (&'static str, &'static str, String) {
    let mut words = head.split_ascii_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            let shards = collect(shard).await;
            let health = Health {
                ready: &beats.readiness(),
                stalls: &beats.stall_counts(),
            };
            ("200 OK", PROMETHEUS, exposition::render(&shards, &health))
        }
        ("GET", "/health") => {
            let not_ready: Vec<usize> = beats
                .readiness()
                .iter()
                .enumerate()
                .filter(|(_, r)| !**r)
                .map(|(s, _)| s)
                .collect();
            if not_ready.is_empty() {
                ("200 OK", TEXT, "ready\n".into())
            } else {
                (
                    "503 Service Unavailable",
                    TEXT,
                    format!("not ready: shards {not_ready:?}\n"),
                )
            }
        }
        ("GET", _) => ("404 Not Found", TEXT, "try /metrics or /health\n".into()),
        _ => ("405 Method Not Allowed", TEXT, "GET only\n".into()),
    }
}

/// One snapshot per shard that answers within `SHARD_DEADLINE`, in shard order.
async fn collect(shard: &Rc<ShardContext>) -> Vec<ShardSnapshot> {
    let asks: Vec<_> = (0..shard.count)
        .map(|s| {
            let on = shard.clone();
            glommio::spawn_local(async move {
                future::or(async { run_on(&on, s, Collect).await.ok() }, async {
                    glommio::timer::sleep(SHARD_DEADLINE).await;
                    None
                })
                .await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(asks.len());
    for (s, ask) in asks.into_iter().enumerate() {
        match ask.await {
            Some(snap) => out.push(snap),
            None => tracing::debug!(shard = s, "metrics: shard did not answer in time; left out"),
        }
    }
    out
}
