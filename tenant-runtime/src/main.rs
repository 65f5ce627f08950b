//! `tenant-runtime`: the WebSplat workspace server that runs inside each user's container.
//! For now it only answers `GET /healthz`, so the container lifecycle can be built against
//! it; the workspace itself (sites, documents, agents…) is the next issue's work. It must
//! never hold anything but its own user's data.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// The status line and body for a request line such as `GET /healthz HTTP/1.1`.
fn respond(request_line: &str) -> (&'static str, &'static str) {
    let mut parts = request_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some("/healthz")) => ("200 OK", "{\"status\":\"ok\"}"),
        (Some(_), Some(_)) => (
            "404 Not Found",
            "{\"error\":{\"code\":\"not_found\",\"message\":\"no such route\"}}",
        ),
        _ => (
            "400 Bad Request",
            "{\"error\":{\"code\":\"bad_request\",\"message\":\"malformed request\"}}",
        ),
    }
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.by_ref().take(8 * 1024).read_line(&mut line)?;
    let (status, body) = respond(&line);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn main() -> ExitCode {
    let listen =
        std::env::var("WEBSPLAT_RUNTIME_LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.to_owned());
    let listener = match TcpListener::bind(&listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tenant-runtime: cannot listen on {listen} (WEBSPLAT_RUNTIME_LISTEN): {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "tenant-runtime {} listening on {listen}",
        env!("CARGO_PKG_VERSION")
    );
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            if let Err(e) = serve(stream) {
                eprintln!("tenant-runtime: request failed: {e}");
            }
        });
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_answers_and_everything_else_is_refused() {
        assert_eq!(respond("GET /healthz HTTP/1.1\r\n").0, "200 OK");
        assert_eq!(respond("GET /other HTTP/1.1\r\n").0, "404 Not Found");
        assert_eq!(respond("\r\n").0, "400 Bad Request");
    }

    #[test]
    fn a_real_connection_gets_a_health_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Some(Ok(stream)) = listener.incoming().next() {
                serve(stream).expect("serve");
            }
        });
        let mut client = TcpStream::connect(addr).expect("connect");
        client
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .expect("write");
        let mut answer = String::new();
        client.read_to_string(&mut answer).expect("read");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("{\"status\":\"ok\"}"), "{answer}");
    }
}
