//! Accept loops of one shard: the bootstrap address (shared by all shards
//! through SO_REUSEPORT, so the kernel spreads connections) and this shard's
//! own port (advertised in zero-hop mode only), for the plaintext listener and,
//! with `--tls-listen`, the TLS one. Enforces the per-shard connection limit
//! (both listeners together).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use futures_lite::future;
use glommio::net::TcpListener;

use super::connection;
use super::frame_read::BodyRead;
use crate::handlers::ShardContext;

/// One bound socket: the node a connection on it addresses (see `Peer::node`)
/// and whether it speaks TLS.
pub struct Bound {
    pub listener: TcpListener,
    pub node: Option<usize>,
    pub tls: bool,
}

/// The listeners of this shard.
pub fn bind(shard: &ShardContext) -> std::io::Result<Vec<Bound>> {
    // The shard's own port is bound in both modes: zero-hop advertises it; in
    // single-address mode it stays unadvertised but lets an operator or a
    // test reach one particular shard.
    let args = &shard.args;
    let own = SocketAddr::new(args.listen.ip(), args.shard_port(shard.id));
    let own_node = (!args.single_address).then_some(shard.id);
    let mut out = vec![
        Bound {
            listener: TcpListener::bind(args.listen)?,
            node: None,
            tls: false,
        },
        Bound {
            listener: TcpListener::bind(own)?,
            node: own_node,
            tls: false,
        },
    ];
    if let Some(tls) = args.tls_listen {
        let own = SocketAddr::new(tls.ip(), args.tls_shard_port(shard.id));
        out.push(Bound {
            listener: TcpListener::bind(tls)?,
            node: None,
            tls: true,
        });
        out.push(Bound {
            listener: TcpListener::bind(own)?,
            node: own_node,
            tls: true,
        });
    }
    Ok(out)
}

/// Accept until the shard stops.
pub async fn accept_loop(shard: Rc<ShardContext>, bound: Bound, stop: event_listener::EventListener) {
    let Bound { listener, node, tls } = bound;
    let per_shard_max = shard.args.connections_max.div_ceil(shard.count);
    let mut stop = stop;
    while let Some(stream) = accept_until(&listener, &mut stop, if tls { "kafka-tls" } else { "kafka" }).await
    {
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
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "set_nodelay failed");
        }
        let from = super::Peer {
            addr: peer,
            node,
            tls,
            principal: None,
        };
        glommio::spawn_local(async move {
            if tls {
                serve_tls(s.clone(), stream, from).await;
            } else {
                let how = BodyRead::Direct(stream.as_raw_fd());
                connection::serve(s.clone(), stream, from, how).await;
            }
            s.connections.set(s.connections.get() - 1);
        })
        .detach();
    }
}

/// Finish the TLS handshake (bounded by `tls::HANDSHAKE_TIMEOUT`), then serve.
async fn serve_tls(shard: Rc<ShardContext>, stream: glommio::net::TcpStream, from: super::Peer) {
    let Some(acceptor) = super::tls::acceptor() else {
        tracing::error!(peer = %from.addr, "TLS listener without a certificate; closing");
        return;
    };
    let handshake = async { Some(acceptor.accept(stream).await) };
    let timeout = async {
        glommio::timer::sleep(super::tls::HANDSHAKE_TIMEOUT).await;
        None
    };
    match future::or(handshake, timeout).await {
        Some(Ok(tls)) => connection::serve(shard, tls, from, BodyRead::Stream).await,
        Some(Err(e)) => {
            tracing::warn!(peer = %from.addr, error = %e, "TLS handshake failed; closing connection")
        }
        None => tracing::warn!(peer = %from.addr, "TLS handshake timed out; closing connection"),
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
