//! One TCP connection to one broker, owned by one shard, with pipelined
//! requests: a writer task drains an ordered queue of frames, a reader task
//! matches responses to requests in order (Kafka answers in order per connection).
//!
//! Invariants: `pending` holds requests in the order their bytes were queued;
//! in-flight requests never exceed the semaphore's permits; a dead connection
//! fails every pending request and refuses new ones. Never blocks the executor.
//! Framing, the size bound, the correlation check and version negotiation are
//! `weir_client`'s; this module only moves bytes.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use glommio::net::TcpStream;
use glommio::sync::{Semaphore, StaticPermit};
use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::protocol::Request;
use weir_client::wire::{self, RESPONSE_BYTES_MAX};
use weir_client::{Negotiation, ProtocolError, Step, VersionTable};

use super::frames::FramePool;
use super::{ClientError, CLIENT_ID};

/// Frames below this are copied into one write to save syscalls; larger ones
/// (record batches) are written from their own buffer without a copy.
const COALESCE_BYTES_MAX: usize = 16 << 10;
/// Socket read granularity: large enough for a 64 KiB batch ack storm or a
/// big Fetch response in few syscalls.
const READ_CHUNK_BYTES: usize = 256 << 10;
/// A frame with at least this much still to come is read in place (`read_large`).
const DIRECT_READ_BYTES: usize = 64 << 10;
/// The read for the next size prefix after a large frame (glommio's own
/// receive buffer is 8 KiB; a read this small goes through it).
const PREFIX_READ_BYTES: usize = 4 << 10;

type SlotResult = Result<Bytes, ClientError>;

#[derive(Default)]
struct Slot {
    result: Option<SlotResult>,
    waker: Option<Waker>,
}

/// A request sent with `Connection::begin`, not yet answered.
pub struct InFlight<R> {
    future: ResponseFuture,
    _permit: StaticPermit,
    api: ApiKey,
    version: i16,
    _request: std::marker::PhantomData<R>,
}

/// Resolves to the response body (after the response header).
pub struct ResponseFuture {
    slot: Rc<RefCell<Slot>>,
}

impl Future for ResponseFuture {
    type Output = SlotResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SlotResult> {
        let mut slot = self.slot.borrow_mut();
        match slot.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

fn complete(slot: &Rc<RefCell<Slot>>, result: SlotResult) {
    let mut s = slot.borrow_mut();
    s.result = Some(result);
    if let Some(w) = s.waker.take() {
        w.wake();
    }
}

struct Pending {
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    slot: Rc<RefCell<Slot>>,
}

#[derive(Default)]
struct State {
    outgoing: VecDeque<Bytes>,
    /// Bytes in `outgoing`: bounds acks=0 producers, which hold no permits.
    queued_bytes: usize,
    /// Tasks waiting for `queued_bytes` to drop (see `wait_queued_below`).
    space_waiters: Vec<Waker>,
    pending: VecDeque<Pending>,
    next_correlation_id: i32,
    writer_waker: Option<Waker>,
    dead: Option<String>,
}

struct Inner {
    addr: String,
    state: RefCell<State>,
    in_flight: Rc<Semaphore>,
    versions: RefCell<VersionTable>,
    timeout: Duration,
}

/// A cheap handle (an `Rc`) to a connection; clone it freely within a shard.
#[derive(Clone)]
pub struct Connection {
    inner: Rc<Inner>,
}

impl Connection {
    /// Connect, start the reader and writer tasks, and negotiate API versions.
    pub async fn connect(addr: &str, timeout: Duration, max_in_flight: usize) -> Result<Self, ClientError> {
        assert!(max_in_flight > 0, "max_in_flight must be positive");
        let stream = connect_stream(addr, timeout).await?;
        // Latency matters more than packet count for acks; batching is ours.
        stream.set_nodelay(true).map_err(|e| ClientError::Io {
            addr: addr.to_string(),
            source: e.into(),
        })?;
        let (reader, writer) = futures_lite::io::split(stream);
        let inner = Rc::new(Inner {
            addr: addr.to_string(),
            state: RefCell::new(State::default()),
            in_flight: Rc::new(Semaphore::new(max_in_flight as u64)),
            versions: RefCell::new(VersionTable::default()),
            timeout,
        });
        glommio::spawn_local(read_loop(inner.clone(), reader)).detach();
        glommio::spawn_local(write_loop(inner.clone(), writer)).detach();
        let conn = Self { inner };
        let table = conn.negotiate().await?;
        *conn.inner.versions.borrow_mut() = table;
        Ok(conn)
    }

    /// Ask the broker which versions it speaks (with the KIP-511 fallback).
    async fn negotiate(&self) -> Result<VersionTable, ClientError> {
        let mut negotiation = Negotiation::new(CLIENT_ID);
        loop {
            let request = RequestKind::ApiVersions(negotiation.request());
            let body = self
                .round_trip(ApiKey::ApiVersions, negotiation.version(), &request)
                .await?;
            let step = negotiation.on_response(&body).map_err(|e| self.protocol(e))?;
            if let Step::Done(table) = step {
                return Ok(table);
            }
        }
    }

    /// `e`, from this connection's broker.
    pub fn protocol(&self, e: ProtocolError) -> ClientError {
        ClientError::protocol(&self.inner.addr, e)
    }

    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The negotiated version of `api`, or an error naming both ranges.
    pub fn version(&self, api: ApiKey) -> Result<i16, ClientError> {
        self.inner
            .versions
            .borrow()
            .version(api)
            .map_err(|e| self.protocol(e))
    }

    /// Cap the negotiated version of `api` (e.g. no topic ids → below v13).
    pub fn cap_version(&self, api: ApiKey, max: i16) {
        self.inner.versions.borrow_mut().cap(api, max);
    }

    /// Wait for an in-flight slot; the permit is held until the answer arrives.
    pub async fn acquire(&self) -> Result<StaticPermit, ClientError> {
        self.inner
            .in_flight
            .acquire_static_permit(1)
            .await
            .map_err(|_closed| ClientError::Closed {
                addr: self.inner.addr.clone(),
            })
    }

    pub fn next_correlation_id(&self) -> i32 {
        let mut st = self.inner.state.borrow_mut();
        st.next_correlation_id = st.next_correlation_id.wrapping_add(1) & i32::MAX;
        st.next_correlation_id
    }

    /// Queue a framed request (as consecutive slices). With `expect_response`
    /// false (acks=0 Produce) nothing is awaited. Never awaits, so the order of
    /// calls is the order on the wire and of `pending`.
    pub fn send(
        &self,
        parts: &[Bytes],
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        expect_response: bool,
    ) -> Result<Option<ResponseFuture>, ClientError> {
        let mut st = self.inner.state.borrow_mut();
        if let Some(why) = &st.dead {
            return Err(dead_error(&self.inner.addr, why));
        }
        st.outgoing
            .extend(parts.iter().filter(|p| !p.is_empty()).cloned());
        st.queued_bytes += parts.iter().map(Bytes::len).sum::<usize>();
        let future = expect_response.then(|| {
            let slot = Rc::new(RefCell::new(Slot::default()));
            st.pending.push_back(Pending {
                correlation_id,
                api,
                version,
                slot: slot.clone(),
            });
            ResponseFuture { slot }
        });
        if let Some(w) = st.writer_waker.take() {
            w.wake();
        }
        Ok(future)
    }

    /// Wait until at most `limit_bytes` are queued for writing (or the
    /// connection died). Requests without responses (acks=0) use this as
    /// their only backpressure.
    pub async fn wait_queued_below(&self, limit_bytes: usize) {
        futures_lite::future::poll_fn(|cx| {
            let mut st = self.inner.state.borrow_mut();
            if st.queued_bytes <= limit_bytes || st.dead.is_some() {
                Poll::Ready(())
            } else {
                st.space_waiters.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }

    /// Await a response body within the connection's timeout.
    pub async fn wait(&self, api: ApiKey, future: ResponseFuture) -> Result<Bytes, ClientError> {
        match glommio::timer::timeout(self.inner.timeout, async { Ok(future.await) }).await {
            Ok(result) => result,
            Err(_timed_out) => Err(ClientError::Timeout {
                api: format!("{api:?}"),
                addr: self.inner.addr.clone(),
                timeout_ms: self.inner.timeout.as_millis() as u64,
            }),
        }
    }

    /// One request/response round trip at `version` (negotiated, or capped).
    pub async fn request<R>(&self, body: R, version: i16) -> Result<R::Response, ClientError>
    where
        R: Request + Into<RequestKind>,
    {
        let api = ApiKey::try_from(R::KEY).expect("kafka-protocol request has a known key");
        let body = self.round_trip(api, version, &body.into()).await?;
        wire::decode_body(body, api, version).map_err(|e| self.protocol(e))
    }

    /// Send a request now and answer later (`finish`): a consumer prefetching
    /// its next Fetch while it reads the last one. Holds an in-flight permit
    /// until finished or dropped.
    pub async fn begin<R>(&self, body: R, version: i16) -> Result<InFlight<R>, ClientError>
    where
        R: Request + Into<RequestKind>,
    {
        let api = ApiKey::try_from(R::KEY).expect("kafka-protocol request has a known key");
        let permit = self.acquire().await?;
        let correlation_id = self.next_correlation_id();
        let frame = wire::encode_request(api, version, correlation_id, CLIENT_ID, &body.into())
            .map_err(|e| self.protocol(e))?;
        let future = self.send(&[frame], api, version, correlation_id, true)?;
        Ok(InFlight {
            future: future.expect("response expected"),
            _permit: permit,
            api,
            version,
            _request: std::marker::PhantomData,
        })
    }

    /// The answer to a request sent with `begin`.
    pub async fn finish<R>(&self, in_flight: InFlight<R>) -> Result<R::Response, ClientError>
    where
        R: Request,
    {
        let InFlight {
            future,
            _permit,
            api,
            version,
            ..
        } = in_flight;
        let body = self.wait(api, future).await?;
        wire::decode_body(body, api, version).map_err(|e| self.protocol(e))
    }

    /// Frame, send and await one request; returns the checked response body.
    async fn round_trip(&self, api: ApiKey, version: i16, body: &RequestKind) -> Result<Bytes, ClientError> {
        let _permit = self.acquire().await?;
        let correlation_id = self.next_correlation_id();
        let frame = wire::encode_request(api, version, correlation_id, CLIENT_ID, body)
            .map_err(|e| self.protocol(e))?;
        let future = self.send(&[frame], api, version, correlation_id, true)?;
        self.wait(api, future.expect("response expected")).await
    }
}

fn dead_error(addr: &str, why: &str) -> ClientError {
    ClientError::Io {
        addr: addr.to_string(),
        source: io::Error::new(io::ErrorKind::BrokenPipe, why.to_string()),
    }
}

async fn connect_stream(addr: &str, timeout: Duration) -> Result<TcpStream, ClientError> {
    match TcpStream::connect_timeout(addr, timeout).await {
        Ok(s) => Ok(s),
        Err(glommio::GlommioError::TimedOut(_)) => Err(ClientError::ConnectTimeout {
            addr: addr.to_string(),
            timeout_ms: timeout.as_millis() as u64,
        }),
        Err(e) => Err(ClientError::Connect {
            addr: addr.to_string(),
            source: e.into(),
        }),
    }
}

/// Account for bytes leaving the queue and wake tasks waiting for room.
fn release_space(inner: &Inner, bytes: usize) {
    let waiters = {
        let mut st = inner.state.borrow_mut();
        st.queued_bytes -= bytes;
        std::mem::take(&mut st.space_waiters)
    };
    for w in waiters {
        w.wake();
    }
}

/// Mark the connection dead and fail everything waiting on it.
fn kill(inner: &Inner, why: String) {
    let pending: Vec<Pending> = {
        let mut st = inner.state.borrow_mut();
        if st.dead.is_none() {
            st.dead = Some(why.clone());
        }
        st.outgoing.clear();
        st.queued_bytes = 0;
        for w in st.space_waiters.drain(..) {
            w.wake();
        }
        if let Some(w) = st.writer_waker.take() {
            w.wake();
        }
        st.pending.drain(..).collect()
    };
    for p in pending {
        complete(&p.slot, Err(dead_error(&inner.addr, &why)));
    }
    inner.in_flight.close();
}

async fn write_loop(inner: Rc<Inner>, mut writer: WriteHalf<TcpStream>) {
    let mut coalesced: Vec<u8> = Vec::with_capacity(COALESCE_BYTES_MAX * 2);
    loop {
        let ready = futures_lite::future::poll_fn(|cx| {
            let mut st = inner.state.borrow_mut();
            if st.dead.is_some() {
                return Poll::Ready(false);
            }
            if st.outgoing.is_empty() {
                st.writer_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(true)
        })
        .await;
        if !ready {
            return;
        }
        if let Err(e) = drain_outgoing(&inner, &mut writer, &mut coalesced).await {
            kill(&inner, format!("write failed: {e}"));
            return;
        }
    }
}

/// Write everything queued: small frames gathered in one buffer, large ones
/// (batches) straight from their `Bytes`. Bounded by the in-flight permits.
async fn drain_outgoing(
    inner: &Inner,
    writer: &mut WriteHalf<TcpStream>,
    coalesced: &mut Vec<u8>,
) -> io::Result<()> {
    loop {
        let next = inner.state.borrow_mut().outgoing.pop_front();
        let Some(part) = next else { break };
        release_space(inner, part.len());
        if part.len() < COALESCE_BYTES_MAX {
            coalesced.extend_from_slice(&part);
            if coalesced.len() >= COALESCE_BYTES_MAX {
                writer.write_all(coalesced).await?;
                coalesced.clear();
            }
        } else {
            if !coalesced.is_empty() {
                writer.write_all(coalesced).await?;
                coalesced.clear();
            }
            writer.write_all(&part).await?;
        }
    }
    if !coalesced.is_empty() {
        writer.write_all(coalesced).await?;
        coalesced.clear();
    }
    Ok(())
}

async fn read_loop(inner: Rc<Inner>, mut reader: ReadHalf<TcpStream>) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    // Reads land here first: zeroed once, so a 60-byte ack does not pay for
    // initialising a fresh 256 KiB tail of `buf` on every read.
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    let pool = FramePool::default();
    let mut last_large = false;
    loop {
        let result = read_frame(
            &inner.addr,
            &mut reader,
            &mut buf,
            &mut chunk,
            &pool,
            &mut last_large,
        )
        .await;
        let frame = match result {
            Ok(f) => f,
            Err(e) => {
                kill(&inner, e.to_string());
                return;
            }
        };
        if let Err(e) = dispatch(&inner, frame) {
            kill(&inner, e.to_string());
            return;
        }
    }
}

/// Match a response frame with the oldest pending request. An unexpected
/// frame or correlation id means the stream is out of step: the connection dies.
fn dispatch(inner: &Inner, frame: Bytes) -> Result<(), ClientError> {
    let pending = inner.state.borrow_mut().pending.pop_front();
    let Some(pending) = pending else {
        let got = wire::correlation_id(&frame).unwrap_or(-1);
        let e = ProtocolError::Correlation { expected: -1, got };
        return Err(ClientError::protocol(&inner.addr, e));
    };
    match wire::response_body(frame, pending.correlation_id, pending.api, pending.version) {
        Ok(body) => complete(&pending.slot, Ok(body)),
        Err(e @ ProtocolError::Correlation { .. }) => {
            let addr = inner.addr.clone();
            complete(&pending.slot, Err(ClientError::Closed { addr }));
            return Err(ClientError::protocol(&inner.addr, e));
        }
        Err(e) => complete(&pending.slot, Err(ClientError::protocol(&inner.addr, e))),
    }
    Ok(())
}

/// Read one size-prefixed frame; returns it without the prefix.
async fn read_frame(
    addr: &str,
    reader: &mut ReadHalf<TcpStream>,
    buf: &mut BytesMut,
    chunk: &mut [u8],
    pool: &FramePool,
    last_large: &mut bool,
) -> Result<Bytes, ClientError> {
    // After a large frame, expect another: read its prefix in a small read,
    // so little of its body takes the copying path (`read_large`).
    let prefix_read = if *last_large {
        PREFIX_READ_BYTES
    } else {
        chunk.len()
    };
    fill(
        addr,
        reader,
        buf,
        &mut chunk[..prefix_read],
        wire::SIZE_PREFIX_BYTES,
    )
    .await?;
    let prefix = [buf[0], buf[1], buf[2], buf[3]];
    let size = wire::response_size(prefix, RESPONSE_BYTES_MAX).map_err(|e| ClientError::protocol(addr, e))?;
    let total = wire::SIZE_PREFIX_BYTES + size;
    *last_large = total.saturating_sub(buf.len()) >= DIRECT_READ_BYTES;
    if *last_large {
        return read_large(addr, reader, buf, pool, total).await;
    }
    fill(addr, reader, buf, chunk, total).await?;
    let mut frame = buf.split_to(total);
    frame.advance(wire::SIZE_PREFIX_BYTES);
    Ok(frame.freeze())
}

/// The rest of a large frame read straight into a recycled buffer (`frames`):
/// only what `buf` already holds of it is copied.
async fn read_large(
    addr: &str,
    reader: &mut ReadHalf<TcpStream>,
    buf: &mut BytesMut,
    pool: &FramePool,
    total: usize,
) -> Result<Bytes, ClientError> {
    let body = total - wire::SIZE_PREFIX_BYTES;
    let mut frame = pool.take(body);
    let have = buf.len() - wire::SIZE_PREFIX_BYTES;
    frame[..have].copy_from_slice(&buf[wire::SIZE_PREFIX_BYTES..]);
    buf.clear();
    let mut filled = have;
    while filled < body {
        match reader.read(&mut frame[filled..body]).await {
            Ok(0) => {
                return Err(ClientError::Closed {
                    addr: addr.to_string(),
                })
            }
            Ok(n) => filled += n,
            Err(e) => {
                return Err(ClientError::Io {
                    addr: addr.to_string(),
                    source: e,
                })
            }
        }
    }
    Ok(pool.freeze(frame, body))
}

/// Read until `buf` holds at least `want` bytes (copying only what arrived).
async fn fill(
    addr: &str,
    reader: &mut ReadHalf<TcpStream>,
    buf: &mut BytesMut,
    chunk: &mut [u8],
    want: usize,
) -> Result<(), ClientError> {
    while buf.len() < want {
        match reader.read(chunk).await {
            Ok(0) => {
                return Err(ClientError::Closed {
                    addr: addr.to_string(),
                })
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                return Err(ClientError::Io {
                    addr: addr.to_string(),
                    source: e,
                })
            }
        }
    }
    Ok(())
}
