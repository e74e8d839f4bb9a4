//! Accept loops of one shard: the bootstrap address (shared by all shards
//! through SO_REUSEPORT, so the kernel spreads connections) and this shard's
//! own port (advertised in zero-hop mode only). Enforces the per-shard
//! connection limit.

use std::net::SocketAddr;
use std::rc::Rc;

use futures_lite::future;
use glommio::net::TcpListener;

use super::connection;
use crate::handlers::ShardContext;

/// The listeners, each with the node a connection on it addresses (see `Peer::node`).
pub fn bind(shard: &ShardContext) -> std::io::Result<Vec<(TcpListener, Option<usize>)>> {
    // The shard's own port is bound in both modes: zero-hop advertises it; in
    // single-address mode it stays unadvertised but lets an operator or a
    // test reach one particular shard.
    let own = SocketAddr::new(shard.args.listen.ip(), shard.args.shard_port(shard.id));
    let own_node = (!shard.args.single_address).then_some(shard.id);
    Ok(vec![
        (TcpListener::bind(shard.args.listen)?, None),
        (TcpListener::bind(own)?, own_node),
    ])
}

/// Accept until the shard stops.
pub async fn accept_loop(
    shard: Rc<ShardContext>,
    listener: TcpListener,
    node: Option<usize>,
    stop: event_listener::EventListener,
) {
    let per_shard_max = shard.args.connections_max.div_ceil(shard.count);
    let mut stop = stop;
    while let Some(stream) = accept_until(&listener, &mut stop, "kafka").await {
        let peer = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        if shard.connections.get() >= per_shard_max {
            tracing::warn!(shard = shard.id, %peer, limit = per_shard_max, "connection limit reached; closing");
            drop(stream);
            continue;
        }
        shard.connections.set(shard.connections.get() + 1);
        let s = shard.clone();
        glommio::spawn_local(async move {
            connection::serve(s.clone(), stream, super::Peer { addr: peer, node }).await;
            s.connections.set(s.connections.get() - 1);
        })
        .detach();
    }
}

/// The next connection, or `None` once `stop` fires. A failed accept (out of
/// file descriptors, say) is logged and retried after a short pause, so a burst
/// of failures cannot spin the shard.
pub async fn accept_until(
    listener: &TcpListener,
    stop: &mut event_listener::EventListener,
    what: &str,
) -> Option<glommio::net::TcpStream> {
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            (&mut *stop).await;
            None
        })
        .await?;
        match accepted {
            Ok(stream) => return Some(stream),
            Err(e) => {
                tracing::warn!(listener = what, error = %e, "accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
