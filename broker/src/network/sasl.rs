//! SASL authentication of one connection, before it reaches the pipelined
//! request loop (connection.rs): SaslHandshake v1 then SaslAuthenticate with
//! PLAIN (one round) or SCRAM-SHA-256/512 (two rounds); SaslHandshake v0
//! (raw tokens) is answered UNSUPPORTED_VERSION. Only ApiVersions,
//! SaslHandshake and SaslAuthenticate are answered until then; anything else,
//! a failed exchange or an unknown mechanism closes the connection with a log
//! line naming the peer (as Kafka's SaslServerAuthenticator). Requests are
//! handled one at a time here, so authenticated connections pay nothing.
//! Never logged: passwords, proofs, keys. PLAIN's PBKDF2 runs on the blocking
//! pool so a login storm does not stall the shard.

use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use kafka_protocol::messages::{
    RequestKind, ResponseKind, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::ResponseError;
use weir_protocol::frame;
use weir_protocol::scram::{self, ClientFirst, Credential, Mechanism};

use super::dispatch::{self, Admission};
use super::Peer;
use crate::handlers::{api_versions, ShardContext};

/// How long a connection may take to authenticate.
pub const AUTHENTICATION_TIMEOUT: Duration = Duration::from_secs(30);

const PLAIN: &str = "PLAIN";

/// Where the exchange stands.
enum State {
    Start,
    /// SaslHandshake chose PLAIN (`None`) or a SCRAM mechanism.
    Chosen(Option<Mechanism>),
    /// SCRAM: the server-first message was sent.
    ServerFirst(Box<ScramRound>),
}

struct ScramRound {
    mechanism: Mechanism,
    first: ClientFirst,
    server_first: String,
    nonce: String,
    credential: Credential,
}

/// After one request: keep going, close, or authenticated as this user.
enum Step {
    Continue,
    Close,
    Done(String),
}

/// Run the exchange; the principal (`User:name`) on success, `None` when the
/// connection must close (every such path has logged why).
pub async fn authenticate<R, W>(
    shard: &ShardContext,
    reader: &mut R,
    writer: &mut W,
    peer: &Peer,
) -> Option<Rc<str>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let exchange = exchange(shard, reader, writer, peer);
    let timeout = async {
        glommio::timer::sleep(AUTHENTICATION_TIMEOUT).await;
        tracing::warn!(peer = %peer.addr, "SASL authentication timed out; closing connection");
        None
    };
    futures_lite::future::or(exchange, timeout).await
}

async fn exchange<R, W>(shard: &ShardContext, reader: &mut R, writer: &mut W, peer: &Peer) -> Option<Rc<str>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let addr = peer.addr;
    let mut state = State::Start;
    loop {
        let frame = match super::connection::read_frame(
            reader,
            super::frame_read::BodyRead::Stream,
            crate::limits::CONTROL_FRAME_BYTES_MAX,
        )
        .await
        {
            Ok(Some(f)) => f.freeze(),
            Ok(None) => {
                tracing::warn!(peer = %addr, "connection closed before SASL authentication completed");
                return None;
            }
            Err(reason) => {
                tracing::warn!(peer = %addr, %reason, "SASL authentication: closing connection");
                return None;
            }
        };
        let (request, version) = match dispatch::admit(frame) {
            Ok(Admission::Immediate(bytes)) => {
                writer.write_all(&bytes).await.ok()?;
                continue;
            }
            Ok(Admission::Handle(request, version)) => (request, version),
            Err(e) => {
                tracing::warn!(peer = %addr, error = %crate::error::chain(&e), "refusing request before SASL authentication; closing connection");
                return None;
            }
        };
        let api_key = request.api_key;
        let correlation_id = request.header.correlation_id;
        let (body, step) = match request.body {
            RequestKind::ApiVersions(_) => (
                ResponseKind::ApiVersions(api_versions::response(0)),
                Step::Continue,
            ),
            RequestKind::SaslHandshake(r) => handshake(shard, &mut state, &r, version, peer),
            RequestKind::SaslAuthenticate(r) => authenticate_step(shard, &mut state, r, peer).await,
            _ => {
                tracing::warn!(peer = %addr, ?api_key, "request before SASL authentication (ILLEGAL_SASL_STATE); closing connection");
                return None;
            }
        };
        let mut out = BytesMut::new();
        if let Err(e) = frame::encode_response(&mut out, api_key, version, correlation_id, &body) {
            tracing::warn!(peer = %addr, error = %e, "encoding a SASL response failed; closing connection");
            return None;
        }
        writer.write_all(&out).await.ok()?;
        match step {
            Step::Continue => {}
            Step::Close => {
                let _ = writer.flush().await;
                return None;
            }
            Step::Done(user) => {
                writer.flush().await.ok()?;
                return Some(format!("User:{user}").into());
            }
        }
    }
}

/// The mechanisms `--sasl-mechanisms` enabled, in its order.
fn enabled(shard: &ShardContext) -> Vec<kafka_protocol::protocol::StrBytes> {
    shard
        .args
        .sasl_mechanisms
        .iter()
        .map(|m| m.clone().into())
        .collect()
}

fn handshake(
    shard: &ShardContext,
    state: &mut State,
    r: &SaslHandshakeRequest,
    version: i16,
    peer: &Peer,
) -> (ResponseKind, Step) {
    let response = SaslHandshakeResponse::default().with_mechanisms(enabled(shard));
    if version == 0 {
        tracing::warn!(peer = %peer.addr, "SaslHandshake v0 (raw SASL tokens) is not supported; closing connection");
        let r = response.with_error_code(ResponseError::UnsupportedVersion.code());
        return (ResponseKind::SaslHandshake(r), Step::Close);
    }
    if !matches!(state, State::Start) {
        tracing::warn!(peer = %peer.addr, "second SaslHandshake (ILLEGAL_SASL_STATE); closing connection");
        let r = response.with_error_code(ResponseError::IllegalSaslState.code());
        return (ResponseKind::SaslHandshake(r), Step::Close);
    }
    let name = r.mechanism.as_str();
    if !shard.args.sasl_mechanisms.iter().any(|m| m == name) {
        let shown: String = name.chars().take(64).collect();
        tracing::warn!(peer = %peer.addr, mechanism = %shown.escape_debug(), "unsupported SASL mechanism; closing connection");
        let r = response.with_error_code(ResponseError::UnsupportedSaslMechanism.code());
        return (ResponseKind::SaslHandshake(r), Step::Close);
    }
    *state = State::Chosen(Mechanism::from_name(name));
    (ResponseKind::SaslHandshake(response), Step::Continue)
}

fn auth_response(bytes: Bytes) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_auth_bytes(bytes)
        .with_session_lifetime_ms(0)
}

fn failed(message: &str) -> (ResponseKind, Step) {
    let r = SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::SaslAuthenticationFailed.code())
        .with_error_message(Some(message.to_string().into()));
    (ResponseKind::SaslAuthenticate(r), Step::Close)
}

fn scram_failed(m: Mechanism) -> (ResponseKind, Step) {
    failed(&format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
        m.name()
    ))
}

async fn authenticate_step(
    shard: &ShardContext,
    state: &mut State,
    r: SaslAuthenticateRequest,
    peer: &Peer,
) -> (ResponseKind, Step) {
    let addr = peer.addr;
    match std::mem::replace(state, State::Start) {
        State::Start => {
            tracing::warn!(peer = %addr, "SaslAuthenticate before SaslHandshake (ILLEGAL_SASL_STATE); closing connection");
            let r = SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::IllegalSaslState.code())
                .with_error_message(Some("SaslAuthenticate before SaslHandshake".into()));
            (ResponseKind::SaslAuthenticate(r), Step::Close)
        }
        State::Chosen(None) => plain(shard, &r.auth_bytes, peer).await,
        State::Chosen(Some(m)) => match scram_first(shard, m, &r.auth_bytes, peer) {
            Ok(round) => {
                let bytes = Bytes::from(round.server_first.clone().into_bytes());
                *state = State::ServerFirst(Box::new(round));
                (
                    ResponseKind::SaslAuthenticate(auth_response(bytes)),
                    Step::Continue,
                )
            }
            Err(()) => scram_failed(m),
        },
        State::ServerFirst(round) => scram_final(&round, &r.auth_bytes, peer),
    }
}

fn scram_first(shard: &ShardContext, m: Mechanism, bytes: &[u8], peer: &Peer) -> Result<ScramRound, ()> {
    let first = scram::parse_client_first(bytes).map_err(|e| {
        tracing::warn!(peer = %peer.addr, mechanism = m.name(), reason = %e, "SASL authentication failed; closing connection");
    })?;
    let catalog = shard.catalog();
    let Some(stored) = catalog.credential(&first.username, m.kafka_type()) else {
        tracing::warn!(peer = %peer.addr, user = %first.username.escape_debug(), mechanism = m.name(), "SASL authentication failed: no such user or no credential for this mechanism; closing connection");
        return Err(());
    };
    let credential = stored.credential();
    let mut random = [0u8; 24];
    if getrandom::getrandom(&mut random).is_err() {
        tracing::error!(peer = %peer.addr, "no randomness for a SCRAM nonce; closing connection");
        return Err(());
    }
    let mut nonce = first.nonce.clone();
    for b in random {
        nonce.push_str(&format!("{b:02x}"));
    }
    let server_first = scram::server_first(&nonce, &credential.salt, credential.iterations);
    Ok(ScramRound {
        mechanism: m,
        first,
        server_first,
        nonce,
        credential,
    })
}

fn scram_final(round: &ScramRound, bytes: &[u8], peer: &Peer) -> (ResponseKind, Step) {
    let m = round.mechanism;
    let user = &round.first.username;
    let verified = scram::parse_client_final(bytes).and_then(|fin| {
        scram::verify_client_final(
            m,
            &round.credential,
            &round.first,
            &round.server_first,
            &round.nonce,
            &fin,
        )
    });
    match verified {
        Ok(server_final) => {
            tracing::info!(peer = %peer.addr, user = %user.escape_debug(), mechanism = m.name(), "SASL authenticated");
            let bytes = Bytes::from(server_final.into_bytes());
            (
                ResponseKind::SaslAuthenticate(auth_response(bytes)),
                Step::Done(user.clone()),
            )
        }
        Err(e) => {
            tracing::warn!(peer = %peer.addr, user = %user.escape_debug(), mechanism = m.name(), reason = %e, "SASL authentication failed; closing connection");
            scram_failed(m)
        }
    }
}

async fn plain(shard: &ShardContext, bytes: &[u8], peer: &Peer) -> (ResponseKind, Step) {
    const FAILED: &str = "Authentication failed: Invalid username or password";
    let (user, password) = match scram::parse_plain(bytes) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(peer = %peer.addr, mechanism = PLAIN, reason = %e, "SASL authentication failed; closing connection");
            return failed(FAILED);
        }
    };
    // The strongest stored credential: PLAIN derives its StoredKey from the password.
    let catalog = shard.catalog();
    let found = [Mechanism::Sha512, Mechanism::Sha256].into_iter().find_map(|m| {
        catalog
            .credential(&user, m.kafka_type())
            .map(|c| (m, c.credential()))
    });
    let ok = match found {
        None => false,
        Some((m, credential)) => {
            let password = password.to_vec();
            glommio::executor()
                .spawn_blocking(move || credential.password_matches(m, &password))
                .await
        }
    };
    if ok {
        tracing::info!(peer = %peer.addr, user = %user.escape_debug(), mechanism = PLAIN, "SASL authenticated");
        return (
            ResponseKind::SaslAuthenticate(auth_response(Bytes::new())),
            Step::Done(user),
        );
    }
    tracing::warn!(peer = %peer.addr, user = %user.escape_debug(), mechanism = PLAIN, "SASL authentication failed: unknown user or wrong password; closing connection");
    failed(FAILED)
}

/// SaslHandshake on an authenticated connection or a listener without SASL.
pub fn illegal_handshake(shard: &ShardContext) -> SaslHandshakeResponse {
    SaslHandshakeResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_mechanisms(enabled(shard))
}

/// SaslAuthenticate on an authenticated connection or a listener without SASL.
pub fn illegal_authenticate() -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some("no SASL exchange is in progress on this connection".into()))
}
