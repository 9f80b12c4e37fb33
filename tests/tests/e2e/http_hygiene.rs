//! HTTP behaviour beneath the protocols: a request refused before its body
//! was read leaves the keep-alive connection usable (the body is read and
//! dropped) or says `Connection: close`; it never ends in a reset.

use std::time::Duration;

use assent_tests::{Backend, TestServer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// One HTTP/1.1 answer read off `stream`: status, lower-cased head, body.
async fn read_answer(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("no reset while reading the answer");
        assert!(n > 0, "the connection closed before the answer");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&chunk[..n]);
    }
    (status, head, body)
}

fn request(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "POST {path} HTTP/1.1\r\nHost: assent.test\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_the_body_is_read_keep_the_connection_or_close_it_cleanly() {
    let server = TestServer::start(Backend::Sqlite).await;
    let address = server.server.addr;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let form = "application/x-www-form-urlencoded";

    // Refused unread, each on the same connection: the wrong media type, an
    // unknown route, a body 100 KiB over the 64 KiB limit, and a form the
    // token endpoint reads and refuses (missing client).
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (request("/oauth/token", "text/plain", &[b'x'; 20_000]), 400),
        (request("/no/such/route", form, &[b'y'; 30_000]), 404),
        (request("/oauth/token", form, &vec![b'z'; 164 * 1024]), 413),
        (
            request("/oauth/token", form, b"grant_type=refresh_token"),
            401,
        ),
    ];
    for (bytes, expected) in &cases {
        stream.write_all(bytes).await.unwrap();
        let (status, head, body) = read_answer(&mut stream).await;
        assert_eq!(status, *expected, "{head}");
        assert!(
            !head.contains("connection: close"),
            "the connection stays usable: {head}"
        );
        assert!(
            body.starts_with(b"{\"error\""),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    // …and it still answers.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: assent.test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_answer(&mut stream).await.0, 200);

    // A body too large to throw away (2 MiB declared, trickled): the answer
    // says the connection closes, and then it does, without a reset first.
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: assent.test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'x'; 1024]).await.unwrap();
    let (status, head, _) = read_answer(&mut stream).await;
    assert_eq!(status, 400);
    assert!(head.contains("connection: close"), "{head}");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "closed cleanly: {closed:?}");
}
