//! One client connection: read frames (size checked before any buffer is
//! sized), admit them, run up to `in_flight_max` handlers concurrently, append
//! Produce batches in request order (order.rs) and write the answers strictly
//! in request order, as Kafka requires.
//! Bounded: when the in-flight queue is full the reader stops reading, so a
//! client that never reads its responses stalls only itself.
//! On a listener that requires SASL, `sasl::authenticate` runs first; the
//! loop below then has no per-request authentication cost.
//! Client quotas (`quota`): a Produce is metered by its frame size as it is
//! read; a throttled connection (Produce here, Fetch in its handler) is muted:
//! no frame is read or dispatched until the throttle time has passed (KIP-219).

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::channels::local_channel;
use glommio::task::JoinHandle;
use kafka_protocol::messages::ApiKey;
use weir_protocol::frame;

use super::dispatch::{self, Admission};
use super::frame_read::{read_body, BodyRead};
use crate::handlers::ShardContext;
use crate::quota::{ConnectionQuota, QuotaKind};
use crate::shard::order::Turnstile;

type Pending = JoinHandle<Option<Vec<Bytes>>>;

/// Serve one connection (plaintext TCP or TLS over it) until it closes. `how`:
/// `BodyRead::Direct` with the socket of a plain TCP `stream`.
pub async fn serve<S>(shard: Rc<ShardContext>, stream: S, mut from: super::Peer, how: BodyRead)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let peer = from.addr;
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    if shard.args.sasl_required(from.tls) {
        match super::sasl::authenticate(&shard, &mut reader, &mut writer, &from).await {
            Some(principal) => from.principal = Some(principal),
            None => {
                let _ = writer.close().await;
                return;
            }
        }
    }
    let (tx, rx) = local_channel::new_bounded::<Pending>(shard.args.in_flight_max);
    let turnstile = Turnstile::new();
    let quota = Rc::new(ConnectionQuota::new(from.principal.as_deref()));
    let writer_task = glommio::spawn_local(write_responses(rx, writer, how));
    loop {
        quota.unmuted().await;
        let frame = match read_frame(&mut reader, how, shard.args.frame_bytes_max).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(reason) => {
                tracing::warn!(%peer, shard = shard.id, %reason, "closing connection");
                break;
            }
        };
        // A throttle ordered while this frame was being read applies to it too.
        quota.unmuted().await;
        let frame = frame.freeze();
        let frame_bytes = frame.len();
        // A copy, not a slice: a live slice would make the records shared.
        let head_len = frame.len().min(64);
        let mut head = [0u8; 64];
        head[..head_len].copy_from_slice(&frame[..head_len]);
        let task = match dispatch::admit(frame) {
            Ok(Admission::Immediate(bytes)) => {
                glommio::spawn_local(async move { Some(vec![bytes]) }).detach()
            }
            Ok(Admission::Handle(request, version)) => {
                // Taken here, in frame order: appends happen in ticket order (order.rs).
                let ticket = (request.api_key == ApiKey::Produce).then(|| turnstile.ticket());
                let throttle_ms = if request.api_key == ApiKey::Produce {
                    let client_id = request.header.client_id.as_deref().unwrap_or("");
                    quota.record(&shard.quotas, QuotaKind::Produce, client_id, frame_bytes)
                } else {
                    0
                };
                let on = dispatch::Connection {
                    peer: from.clone(),
                    quota: quota.clone(),
                    throttle_ms,
                };
                spawn_handler(shard.clone(), request, version, on, ticket)
            }
            Err(e) => {
                tracing::warn!(%peer, shard = shard.id, error = %crate::error::chain(&e), "refusing request; closing connection");
                tracing::debug!(%peer, head = ?&head[..head_len], "refused frame");
                break;
            }
        };
        if tx.send(task).await.is_err() {
            break;
        }
    }
    drop(tx);
    writer_task.await;
}

/// Run one admitted request's handler on its own task.
fn spawn_handler(
    shard: Rc<ShardContext>,
    request: Box<weir_protocol::frame::Request>,
    version: i16,
    on: dispatch::Connection,
    ticket: Option<crate::shard::order::Ticket>,
) -> Pending {
    let in_flight = crate::metrics::InFlight::enter();
    let peer = on.peer.addr;
    glommio::spawn_local(async move {
        let _in_flight = in_flight;
        match dispatch::handle(shard, *request, version, on, ticket).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(%peer, error = %crate::error::chain(&e), "request failed; closing connection");
                None
            }
        }
    })
    .detach()
}

/// Write each answer in request order until the channel or the socket closes (on
/// plain TCP each answer's parts in one `sendmsg`, `frame_write.rs`).
async fn write_responses<W: AsyncWrite + Unpin>(
    rx: local_channel::LocalReceiver<Pending>,
    mut writer: W,
    how: BodyRead,
) {
    let mut gather = super::frame_write::Gather::default();
    while let Some(pending) = rx.recv().await {
        let Some(Some(parts)) = pending.await else {
            continue;
        };
        if super::frame_write::write_parts(&mut writer, how, &parts, &mut gather)
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = writer.close().await;
}

/// Read one frame body. `Ok(None)` on a clean end of stream between frames.
pub(super) async fn read_frame<R: futures_lite::AsyncRead + Unpin>(
    reader: &mut R,
    how: BodyRead,
    frame_bytes_max: usize,
) -> Result<Option<BytesMut>, String> {
    let mut prefix = [0u8; frame::SIZE_PREFIX_BYTES];
    match reader.read(&mut prefix[..1]).await {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(e) => return Err(e.to_string()),
    }
    reader
        .read_exact(&mut prefix[1..])
        .await
        .map_err(|e| format!("truncated size prefix: {e}"))?;
    let size = frame::frame_size(prefix, frame_bytes_max).map_err(|e| e.to_string())?;
    read_body(reader, how, size).await.map(Some)
}
