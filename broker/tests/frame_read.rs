//! `network::frame_read`: a frame body read straight into unfilled capacity (plain
//! TCP) and through the stream (TLS's way) gives the same bytes, in order, across
//! chunks and readiness waits; a peer that closes early is an error, never a short frame.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Duration;

use weir_broker::deadline;
use weir_broker::network::frame_read::{read_body, BodyRead};

#[test]
fn given_a_body_sent_in_pieces_when_read_directly_or_through_the_stream_should_return_it_whole() {
    let _deadline = deadline::arm(deadline::this_test(), Duration::from_secs(60));
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("executor")
        .run(async {
            let body: Vec<u8> = (0..3 * 1024 * 1024 + 123).map(|i| (i % 251) as u8).collect();
            for direct in [true, false] {
                let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                let addr = listener.local_addr().expect("addr");
                let sent = body.clone();
                let writer = std::thread::spawn(move || {
                    let mut s = std::net::TcpStream::connect(addr).expect("connect");
                    for piece in sent.chunks(700_001) {
                        s.write_all(piece).expect("write");
                        std::thread::sleep(Duration::from_millis(5));
                    }
                });
                let mut stream = listener.accept().await.expect("accept");
                let how = if direct {
                    BodyRead::Direct(stream.as_raw_fd())
                } else {
                    BodyRead::Stream
                };
                let got = read_body(&mut stream, how, body.len()).await.expect("body");
                assert!(got[..] == body[..], "direct={direct}: bytes differ");
                writer.join().expect("writer");
                let short = read_body(&mut stream, how, 10).await;
                assert!(
                    short.is_err(),
                    "direct={direct}: a closed peer must not give a frame"
                );
            }
        });
}
